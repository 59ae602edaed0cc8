"""`kds print-test ENDPOINT` and `kds virtual-printer --port N`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..model import ItemEndpoint, Location, Order, OrderItem, OrderStatus, Plu, Quantity, TicketInfo
from .config import PrinterConfig
from .render import Ticket, TicketRenderer
from .transport import PrinterFault, send_job


def register(subparsers: Any) -> None:
    """Add the printing subcommands to `kds`."""
    test = subparsers.add_parser(
        "print-test", help="print a sample ticket on an endpoint's printer"
    )
    test.add_argument("endpoint", help="name of a printer endpoint in config.toml")
    test.add_argument("--config", default="config.toml", type=Path, help="path of config.toml")
    test.add_argument("--address", help="print on HOST:PORT instead of the configured printer")
    test.set_defaults(func=cmd_print_test)

    vp = subparsers.add_parser("virtual-printer", help="run a virtual ESC/POS network printer")
    vp.add_argument("--port", type=int, default=9100, help="TCP port to listen on (default 9100)")
    vp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    vp.add_argument("--log", type=Path, help="append each decoded job as a JSON line to this file")
    vp.add_argument(
        "--profile", default="TM-T20II", help="python-escpos profile (code pages) to emulate"
    )
    vp.add_argument(
        "--control-port", type=int, help="HTTP control port on 127.0.0.1 (POST /mode, GET /jobs)"
    )
    vp.add_argument(
        "--mode", default="online", help="initial mode: online, offline, paper_out, hang, ..."
    )
    vp.add_argument("--no-status", action="store_true", help="never answer DLE EOT status queries")
    vp.add_argument("--quiet", action="store_true", help="do not echo printed tickets")
    vp.set_defaults(func=cmd_virtual_printer)


def sample_order() -> Order:
    """A ticket that exercises the layout and the code pages."""
    now = datetime.now(UTC)

    def item(item_id: int, name: str, amount: str, **extra: Any) -> OrderItem:
        return OrderItem(
            id=item_id,
            plu=Plu(name=name),
            quantity=Quantity(amount=Decimal(amount)),
            endpoints=[ItemEndpoint(name="test", status=OrderStatus.CREATED)],
            **extra,
        )

    return Order(
        id="print-test",
        number=123,
        source="kds",
        external_id="print-test",
        user="kds print-test",
        device_name="kds",
        ticket=TicketInfo(name="Test", location=Location(table_name="1", zone_name="Kitchen")),
        items=[
            item(
                1,
                "Cheeseburger",
                "2",
                modifiers=["no onion", "extra cheese"],
                comment="medium rare",
                course_number=1,
            ),
            item(2, "Čučoriedkový koláč", "1", course_number=2),
            item(3, "Größe L Schnitzel", "1", course_number=2),
            item(4, "Борщ", "1", modifiers=["сметана"], course_number=2),
        ],
        created_at=now,
        updated_at=now,
    )


def cmd_print_test(args: argparse.Namespace) -> int:
    """Print the sample ticket; exit 0 when the printer took it."""
    from ..config import load_settings

    settings = load_settings(args.config)
    endpoint = settings.endpoint(args.endpoint)
    if endpoint is None:
        print(f"kds: no endpoint {args.endpoint!r} in {args.config}", file=sys.stderr)
        return 2
    config: PrinterConfig | None = endpoint.printer
    if args.address:
        base = config or PrinterConfig(address=args.address)
        config = base.model_copy(update={"address": PrinterConfig(address=args.address).address})
    if config is None:
        print(f"kds: endpoint {args.endpoint!r} has no printer (use --address)", file=sys.stderr)
        return 2
    order = sample_order()
    for it in order.items:
        it.endpoints[0].name = endpoint.name
    data = TicketRenderer(config).render(
        Ticket(order=order, endpoint=endpoint.name, job_id="print-test")
    )
    try:
        status = asyncio.run(send_job(config, data))
    except PrinterFault as fault:
        print(
            f"{endpoint.name} ({config.address}): FAILED — {fault.state}: {fault.detail}",
            file=sys.stderr,
        )
        return 1
    detail = status.detail if status is not None else "sent (printer does not report status)"
    print(f"{endpoint.name} ({config.address}): printed {len(data)} bytes — {detail}")
    return 0


def cmd_virtual_printer(args: argparse.Namespace) -> int:
    """Run one virtual printer until SIGINT/SIGTERM."""
    from ..simulators.printer import PrintedJob, VirtualPrinter

    def echo(job: PrintedJob) -> None:
        if args.quiet:
            return
        flags = "" if job.complete else ", INCOMPLETE"
        print(f"--- job {job.seq} ({job.nbytes} bytes, {len(job.tickets)} ticket(s){flags}) ---")
        print(job.text, flush=True)

    printer = VirtualPrinter(
        args.host,
        args.port,
        profile=args.profile,
        log_path=args.log,
        control_port=args.control_port,
        mode=args.mode,
        answers_status=not args.no_status,
        on_job=echo,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await printer.start()
        control = (
            f", control http://127.0.0.1:{printer.control_port}"
            if printer.control_port is not None
            else ""
        )
        print(
            f"virtual printer listening on {printer.address} (mode {printer.mode}){control}",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await printer.stop()

    try:
        asyncio.run(main())
    except OSError as err:
        from ..cli import listen_problem

        if (problem := listen_problem(err, f"{args.host}:{args.port}")) is None:
            raise
        print(problem, file=sys.stderr)
        return 1
    return 0
