"""What a kitchen feels: POS to paper and POS to screen, per source (`print`, `webhooks` phases).

* print: a station with a virtual printer (in the bench process, so it timestamps the
  ticket's cut as it arrives); orders posted to the native API at `rate` for
  `duration`; the delay from each POST to its ticket's last byte (the cut).
* webhooks: the ready2order simulator (`group_window = 0`) and the PORTOS simulator
  (signed webhooks, a 60 s poll so only the webhook can bring an order in time)
  beside one kds; a table booking or a ticket is made in the simulator at a steady
  pace, and the delay until every grill screen has its item is timed. The PORTOS
  figure includes kds's poll of the simulator that the webhook triggers. The
  ready2order rate limit is lifted on both sides: the figure is kds's latency, not
  the POS's request quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from kds.simulators.portos import PortosSimulator
from kds.simulators.printer import PrintedJob, VirtualPrinter
from kds.simulators.ready2order import Ready2OrderSimulator

from .load import Screens, order_body, paced, percentile
from .profile import recording
from .servers import cpu_seconds

if TYPE_CHECKING:
    from .runner import Bench

#: Everything goes to the grill: one ticket (one screen card) per order.
GRILL_ONLY = '[routing]\ndefault_endpoint = "grill"\n'
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
ACCOUNT_TOKEN = "bench-r2o-account-token"
PORTOS_TOKEN = "bench-portos-token"
_COMMENT = b'"comment":"'


async def print_phase(bench: Bench) -> None:
    """POST → ticket cut at a virtual printer, p99 at `rate`."""
    o = bench.options
    key_of = re.compile(rf"prt{bench.run_id}-\d+")
    count = max(1, round(o.rate * o.duration))
    cuts: dict[str, float] = {}
    all_printed = asyncio.Event()

    def on_job(job: PrintedJob) -> None:
        # A job (one connection) may carry several tickets, each with the time its cut arrived.
        for ticket, cut_at in zip(job.tickets, job.cut_times):
            match = key_of.search(ticket)
            if match:
                cuts.setdefault(match.group(0), cut_at)
        if len(cuts) >= count:
            all_printed.set()

    async with VirtualPrinter(name="bench-grill", on_job=on_job) as printer:
        endpoints = f'\n[[endpoints]]\nname = "grill"\ndisplay = true\nprinter = {{ address = "{printer.address}" }}\n'
        server = await bench.fresh_kds("print", endpoints=endpoints, routing=GRILL_ONLY)
        api = server.url + "/api/v1/orders"
        requests = []
        for i in range(count):
            key = f"prt{bench.run_id}-{i}"
            body = order_body(key)
            body["items"][0]["comment"] = key  # printed on the ticket: how it is found again
            requests.append((key, api, _json(body)))
        cpu = cpu_seconds(server.pid)
        async with recording(server.pid, o.profile, "print"):
            async with aiohttp.ClientSession() as session:
                result = await paced(session, requests, o.rate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_printed.wait(), 10 + count / o.rate)
        bench.m["print.cpu_ms_per_order"] = (cpu_seconds(server.pid) - cpu) * 1000 / count
    delays = [cuts[k] - t0 for k, t0 in result.sent.items() if k in cuts]
    bench.m["print.p50"] = percentile(delays, 50) * 1000
    bench.m["print.p99"] = percentile(delays, 99) * 1000
    bench.m["print.answer.p99"] = percentile(list(result.answers.values()), 99) * 1000
    if len(delays) < count:
        bench.errors.append(f"print: {count - len(delays)} of {count} tickets did not print")
    if result.errors:
        bench.errors.append(f"print: HTTP errors {result.errors}")


async def webhooks_phase(bench: Bench) -> None:
    """ready2order and PORTOS webhook → item on every grill screen, p99."""
    o = bench.options
    r2o = Ready2OrderSimulator(account_token=ACCOUNT_TOKEN, rate_limit=10**9, seed=1)
    r2o.seed_menu(tables=o.webhook_samples)
    portos = PortosSimulator(static_tokens=[PORTOS_TOKEN], endpoints=["grill"])
    portos.add_plu(101, "Burger", ["grill"])
    await r2o.start()
    await portos.start()
    try:
        sources = (
            f'\n[[sources]]\ntype = "ready2order"\nbase_url = "{r2o.api_url}"\n'
            f'account_token = "{ACCOUNT_TOKEN}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
            'group_window = 0\npoll_interval = "1h"\nrate_limit = 1000000000\n'
            f'\n[[sources]]\ntype = "portos"\nbase_url = "{portos.url}"\ntoken = "{PORTOS_TOKEN}"\n'
            f'webhook_secret = "{WEBHOOK_SECRET}"\npoll_interval = "60s"\nreconcile_interval = "1h"\n'
        )
        server = await bench.fresh_kds("webhooks", sources=sources)
        r2o.webhook_url = f"{server.url}/hooks/ready2order/{WEBHOOK_SECRET}"
        r2o.webhook_events.update(("orderItem.created",))
        portos.set_webhook(f"{server.url}/hooks/portos/portos", WEBHOOK_SECRET)
        burger = next(p.id for p in r2o.products.values() if p.name == "Burger")
        tables = sorted(r2o.tables)
        prefix = f"wh{bench.run_id}"

        def book(i: int) -> str:
            key = f"{prefix}-r2o-{i}"
            r2o.create_items(tables[i % len(tables)], [(burger, 1, key)])
            return key

        await _timed(bench, "webhook.ready2order", server.port, book, _COMMENT)

        def ticket(i: int) -> str:
            portos.create_ticket([{"pluCode": 101, "comment": f"{prefix}-portos-{i}"}])
            return f"{prefix}-portos-{i}"

        await _timed(bench, "webhook.portos", server.port, ticket, _COMMENT)
    finally:
        await portos.stop()
        await r2o.stop()


async def _timed(
    bench: Bench, key: str, port: int, make: Callable[[int], str], field: bytes
) -> None:
    """Make `webhook_samples` POS changes at `webhook_rate`; time each until every screen has it."""
    o = bench.options
    screens = Screens(
        [f"ws://127.0.0.1:{port}/api/v1/ws?endpoint=grill"] * o.screens,
        "order.created",
        snapshot=True,
        deflate=o.deflate,
        key_field=field,
    )
    await screens.open()
    try:
        screens.expect(o.webhook_samples)
        sent: dict[str, float] = {}
        start = time.perf_counter()
        for i in range(o.webhook_samples):
            delay = start + i / o.webhook_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the till, not waiting for an effect
            sent[make(i)] = time.perf_counter()
        await screens.wait(10 + o.webhook_samples / o.webhook_rate)
        delays, missing = screens.latencies(sent)
    finally:
        await screens.close()
    bench.m[f"{key}.p50"] = percentile(delays, 50) * 1000
    bench.m[f"{key}.p99"] = percentile(delays, 99) * 1000
    if missing:
        bench.errors.append(f"{key}: {missing} deliveries did not arrive")


def _json(body: object) -> bytes:
    return json.dumps(body).encode()
