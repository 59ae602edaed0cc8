"""Printing survives SIGKILL: queued tickets print after a restart, an interrupted one as REPRINT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kds.simulators.printer import VirtualPrinter

from .util import KdsProcess, base_config, order_body, wait_until, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
async def bar() -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(name="bar") as vp:
        yield vp


def kds_with_printer(tmp_path: Path, printer: VirtualPrinter, **options: Any) -> KdsProcess:
    data = base_config(
        tmp_path,
        logging={"level": "info", "format": "json"},
        endpoints=[
            {"name": "grill", "display": True},
            {"name": "cold", "display": True},
            {
                "name": "bar",
                "printer": {
                    "address": printer.address,
                    "retry_initial": 0.05,
                    "retry_max": 0.3,
                    "attempts": 2,
                    "status_timeout": 1,
                    **options,
                },
            },
        ],
    )
    return KdsProcess(write_config(tmp_path / "config.toml", data), tmp_path / "kds.sqlite3")


async def bar_history(http: aiohttp.ClientSession, order_id: str) -> list[str]:
    async with http.get(f"/api/v1/orders/{order_id}") as response:
        order = await response.json()
    item = next(i for i in order["items"] if i["endpoints"][0]["name"] == "bar")
    return [c["status"] for c in item["endpoints"][0]["statusChanges"]]


def drink(i: int) -> dict[str, Any]:
    return order_body(f"c{i}", items=[{"id": 1, "plu": {"name": f"Drink {i}", "group": "Drinks"}}])


async def post_drinks(http: aiohttp.ClientSession, count: int) -> list[dict[str, Any]]:
    """`count` one-drink orders, each acknowledged."""
    orders = []
    for i in range(count):
        async with http.post("/api/v1/orders", json=drink(i)) as response:
            assert response.status == 201
            orders.append(await response.json())
    return orders


async def all_at(http: aiohttp.ClientSession, orders: list[dict[str, Any]], status: str) -> bool:
    """Whether every order's drink is at `status` now."""
    return all([(await bar_history(http, o["id"]))[-1] == status for o in orders])


async def test_tickets_queued_at_sigkill_print_after_restart(
    tmp_path: Path, bar: VirtualPrinter
) -> None:
    # Ten tickets wait for an offline printer; kds is SIGKILLed; after the restart, with the
    # printer back, all ten print once each, in order, and end processed. None is lost.
    await bar.set_mode("offline")
    kds = kds_with_printer(tmp_path, bar)
    await asyncio.to_thread(kds.start)
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            orders = await post_drinks(http, 10)
            await wait_until(lambda: all_at(http, orders, "failed"), timeout=10)
        await asyncio.to_thread(kds.kill)
        await bar.set_mode("online")
        await asyncio.to_thread(kds.start)
        await bar.wait_for(lambda p: len(p.tickets()) >= 10, timeout=20)
        tickets = bar.tickets()  # in batches: several tickets per connection
        assert [t.splitlines()[1] for t in tickets] == [f"#{o['number']}" for o in orders]
        assert not any("REPRINT" in t for t in tickets)
        async with aiohttp.ClientSession(kds.url) as http:
            await wait_until(lambda: all_at(http, orders, "processed"), timeout=10)
            assert await bar_history(http, orders[0]["id"]) == [
                "created",
                "failed",
                "sent",
                "delivered",
                "processed",
            ]
        assert len(bar.tickets()) == 10
    finally:
        await asyncio.to_thread(kds.kill)


async def test_ticket_interrupted_by_sigkill_reprints_marked_reprint(
    tmp_path: Path, bar: VirtualPrinter
) -> None:
    # kds is killed after writing a ticket but before the printer confirmed it: after the restart
    # the ticket prints again, marked REPRINT — once plus a marked copy, never a silent duplicate.
    await bar.set_mode("stall")
    kds = kds_with_printer(tmp_path, bar, status_timeout=30)
    await asyncio.to_thread(kds.start)
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            async with http.post("/api/v1/orders", json=drink(1)) as response:
                order = await response.json()
            await wait_until(lambda: bar.bytes_received > 100, timeout=10)
            assert (await bar_history(http, order["id"]))[-1] == "sent"
        await asyncio.to_thread(kds.kill)
        first = (await bar.wait_for_jobs(1))[0]
        assert "1 x Drink 1" in first.text and "REPRINT" not in first.text
        await bar.set_mode("online")
        await asyncio.to_thread(kds.start)
        second = (await bar.wait_for_jobs(2, timeout=20))[1]
        assert second.lines[0].text.strip() == "REPRINT" and "1 x Drink 1" in second.text
        assert f"#{order['number']}" in second.text
        async with aiohttp.ClientSession(kds.url) as http:

            async def processed() -> bool:
                return (await bar_history(http, order["id"]))[-1] == "processed"

            await wait_until(processed, timeout=10)
            assert await bar_history(http, order["id"]) == [
                "created",
                "sent",
                "delivered",
                "processed",
            ]
        assert len(bar.jobs) == 2
    finally:
        await asyncio.to_thread(kds.kill)


async def test_batch_interrupted_by_sigkill_reprints_every_ticket_of_it_marked_reprint(
    tmp_path: Path, bar: VirtualPrinter
) -> None:
    # Three tickets waited for the printer and went out together over one connection; the printer
    # took them but never confirmed (stall) and kds was killed before it could record them
    # delivered. After the restart all three print again, in order, each marked REPRINT.
    await bar.set_mode("offline")
    kds = kds_with_printer(tmp_path, bar, status_timeout=30)
    await asyncio.to_thread(kds.start)
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            orders = await post_drinks(http, 3)
            await wait_until(lambda: all_at(http, orders, "failed"), timeout=10)
            await bar.set_mode("stall")
            await wait_until(lambda: bar.cuts_received >= 3, timeout=10)
            assert await all_at(http, orders, "sent")
        await asyncio.to_thread(kds.kill)
        [first] = await bar.wait_for_jobs(1)
        numbers = [f"#{o['number']}" for o in orders]
        assert [t.splitlines()[1] for t in first.tickets] == numbers and "REPRINT" not in first.text
        await bar.set_mode("online")
        await asyncio.to_thread(kds.start)
        await bar.wait_for(lambda p: len(p.tickets()) >= 6, timeout=20)
        reprints = bar.tickets()[3:]
        assert [t.splitlines()[0].strip() for t in reprints] == ["REPRINT"] * 3
        assert [t.splitlines()[2] for t in reprints] == numbers  # under the banner and station
        async with aiohttp.ClientSession(kds.url) as http:
            await wait_until(lambda: all_at(http, orders, "processed"), timeout=10)
        assert len(bar.tickets()) == 6
    finally:
        await asyncio.to_thread(kds.kill)
