"""The asyncio printer client against the virtual printer: status, faults, timeouts, unknown outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from kds.printing.config import PrinterConfig, split_address
from kds.printing.transport import PrinterFault, print_tickets, probe, send_job
from kds.simulators.printer import VirtualPrinter

JOB = b"\x1b@hello kitchen\n\x1dV\x01"


@pytest.fixture
async def printer() -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter() as vp:
        yield vp


def config(vp: VirtualPrinter, **extra: object) -> PrinterConfig:
    fields: dict[str, object] = {
        "connect_timeout": 1,
        "status_timeout": 0.3,
        "write_timeout": 1,
        **extra,
    }
    return PrinterConfig(address=vp.address, **fields)


class Hook:
    """Counts before_write calls (the spooler records the attempt there)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def test_prints_and_reports_status_before_and_after(printer: VirtualPrinter) -> None:
    hook = Hook()
    status = await send_job(config(printer), JOB, before_write=hook)
    assert status is not None and status.state == "ok" and hook.calls == 1
    job = (await printer.wait_for_jobs(1))[0]
    assert job.text == "hello kitchen" and job.complete
    assert job.status_queries == [1, 2, 4, 1, 2, 4]


async def test_several_tickets_go_out_over_one_connection(printer: VirtualPrinter) -> None:
    # A batch: one status check before, the tickets `prepare()` hands over once the printer is
    # ready, one status check after — one connection, each ticket decoded from the bytes.
    tickets = [b"\x1b@ticket %d\n\x1dV\x01" % i for i in range(3)]
    prepared = 0

    async def prepare() -> list[bytes]:
        nonlocal prepared
        prepared += 1
        return tickets

    status = await print_tickets(config(printer), prepare)
    assert status is not None and status.state == "ok" and prepared == 1
    job = (await printer.wait_for_jobs(1))[0]
    assert job.tickets == ["ticket 0", "ticket 1", "ticket 2"] and job.complete
    assert job.status_queries == [1, 2, 4, 1, 2, 4] and printer.connections == 1


async def test_a_printer_that_stalls_after_a_batch_leaves_every_ticket_of_it_unknown(
    printer: VirtualPrinter,
) -> None:
    # The tickets are handed over one by one from `prepare()`'s iterable (the caller learns which
    # left); no status answer after them: each may have printed.
    await printer.set_mode("stall")
    taken: list[int] = []

    async def prepare() -> Iterator[bytes]:
        def tickets() -> Iterator[bytes]:
            for i in range(3):
                taken.append(i)
                yield JOB

        return tickets()

    with pytest.raises(PrinterFault) as err:
        await print_tickets(config(printer), prepare)
    assert err.value.state == "timeout" and err.value.maybe_printed and taken == [0, 1, 2]
    assert (await printer.wait_for_jobs(1))[0].tickets == ["hello kitchen"] * 3


async def test_offline_printer_is_a_clean_failure(printer: VirtualPrinter) -> None:
    await printer.set_mode("offline")
    hook = Hook()
    with pytest.raises(PrinterFault) as err:
        await send_job(config(printer), JOB, before_write=hook)
    assert err.value.state == "offline" and not err.value.maybe_printed and hook.calls == 0


@pytest.mark.parametrize(
    ("mode", "state"), [("paper_out", "paper_out"), ("cover_open", "cover_open")]
)
async def test_fault_reported_before_the_job_prints_nothing(
    printer: VirtualPrinter, mode: str, state: str
) -> None:
    await printer.set_mode(mode)
    hook = Hook()
    with pytest.raises(PrinterFault) as err:
        await send_job(config(printer), JOB, before_write=hook)
    assert err.value.state == state and not err.value.maybe_printed and hook.calls == 0
    assert printer.jobs == [] and printer.discarded == []


async def test_hung_printer_detected_within_the_status_timeout(printer: VirtualPrinter) -> None:
    # The printer accepts the connection and never reads: the status answer times out, nothing was sent.
    await printer.set_mode("hang")
    started = time.monotonic()
    with pytest.raises(PrinterFault) as err:
        await send_job(config(printer), JOB)
    assert err.value.state == "timeout" and not err.value.maybe_printed
    assert time.monotonic() - started < 0.3 + 1.0


async def test_connection_dropped_mid_job_is_an_unknown_outcome(printer: VirtualPrinter) -> None:
    await printer.set_mode("drop_mid_job", drop_after=5)
    hook = Hook()
    with pytest.raises(PrinterFault) as err:
        await send_job(config(printer), JOB, before_write=hook)
    assert (
        err.value.state in ("disconnected", "timeout")
        and err.value.maybe_printed
        and hook.calls == 1
    )


async def test_printer_that_never_answers_status(printer: VirtualPrinter) -> None:
    # With status_query = false such a printer is usable; with the default it looks hung.
    await printer.set_mode("online", answers_status=False)
    assert await send_job(config(printer, status_query=False), JOB) is None
    assert (await printer.wait_for_jobs(1))[0].status_queries == []
    with pytest.raises(PrinterFault) as err:
        await send_job(config(printer), JOB)
    assert err.value.state == "timeout"


async def test_slow_printer_within_timeouts_still_prints(printer: VirtualPrinter) -> None:
    await printer.set_mode("slow", delay=0.05)
    await send_job(config(printer, status_timeout=2), JOB)
    assert (await printer.wait_for_jobs(1))[0].text == "hello kitchen"


async def test_probe(printer: VirtualPrinter) -> None:
    status = await probe(config(printer))
    assert status is not None and status.state == "ok"
    await printer.set_mode("paper_out")
    status = await probe(config(printer))
    assert status is not None and status.state == "paper_out" and status.detail == "out of paper"


async def test_the_event_loop_keeps_running_while_a_printer_hangs(printer: VirtualPrinter) -> None:
    # Five hung jobs at once and a ticking task: the ticks continue, every job fails by its own timeout.
    await printer.set_mode("hang")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    results = await asyncio.gather(
        *(send_job(config(printer), JOB) for _ in range(5)), return_exceptions=True
    )
    ticker.cancel()
    assert all(isinstance(r, PrinterFault) and r.state == "timeout" for r in results)
    assert ticks >= 10


def test_addresses() -> None:
    assert split_address("10.0.0.5") == ("10.0.0.5", 9100)
    assert split_address("printer.local:9101") == ("printer.local", 9101)
    assert split_address("[::1]:9100") == ("::1", 9100)
    with pytest.raises(ValueError):
        split_address("host:99999")
    with pytest.raises(ValueError, match="unknown printer profile"):
        PrinterConfig(address="x", profile="TM-NOPE")
    with pytest.raises(ValueError, match="code_pages"):
        PrinterConfig(address="x", profile="simple", code_pages=["CP866"])
    assert PrinterConfig(address="x", connect_timeout="500ms", retry_max="1m").retry_max == 60
