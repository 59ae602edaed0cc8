"""ready2order returns, corrections, order_status and silently removed items reach the kitchen as VOIDs (issue 14, items 5 and 9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings, settings_from_dict
from kds.model import OrderStatus
from kds.simulators.printer import VirtualPrinter
from kds.simulators.ready2order import Ready2OrderSimulator
from kds.sources.ready2order.webhook import RETURN_EVENT

from .test_ready2order_e2e import (
    SECRET,
    TOKEN,
    active_items,
    product,
    r2o_orders,
    settled,
    source,
    table,
)
from .util import base_config, polls, printed, printed_grill, until


@pytest.fixture
def r2o_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sim() -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(account_token=TOKEN, retry_delays=(0.05, 0.1), rate_period=1.0)
    sim.seed_menu()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(
    tmp_path: Path, sim: Ready2OrderSimulator, printer: VirtualPrinter, r2o_options: dict[str, Any]
) -> dict[str, Any]:
    # The default windows and rate on the daemon's ManualClock, which the tests move.
    source = {
        "type": "ready2order", "base_url": sim.api_url, "account_token": TOKEN, "webhook_secret": SECRET,
        "poll_interval": "1h", **r2o_options,
    }  # fmt: skip
    return base_config(
        tmp_path,
        endpoints=printed_grill(printer.address),
        sources=[source],
    )


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


@pytest.fixture
async def hooked(client: TestClient, sim: Ready2OrderSimulator) -> TestClient:
    sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    return client


def kitchen(daemon: Daemon) -> dict[str, Decimal]:
    """What the kitchen has to make: live quantity per dish."""
    totals: dict[str, Decimal] = {}
    for order in r2o_orders(daemon):
        for item in order.items:
            if any(e.status is not OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                totals[item.plu.name] = totals.get(item.plu.name, Decimal(0)) + Decimal(
                    item.quantity.amount
                )
    return totals


async def test_retour_row_voids_the_dish_and_is_never_a_new_one(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: a return booked in retour mode (order_retour, positive quantity) prints a VOID
    # of the dish at its station and never reaches the kitchen as a new item.
    t5 = table(sim, "5")
    steak, burger = product(sim, "Steak"), product(sim, "Burger")
    sim.create_items(t5, [(steak, 1), (burger, 1)])
    await printed(daemon.clock, printer, 1)
    (returned,) = sim.return_items(t5, [(steak, 1)])
    void = (await printed(daemon.clock, printer, 2))[1]
    assert (
        void.lines[0].text.strip() == "VOID" and "Steak" in void.text and "Burger" not in void.text
    )
    await settled(daemon, sim)
    assert kitchen(daemon) == {"Burger": 1}
    assert returned not in {i.id for o in r2o_orders(daemon) for i in o.items}
    assert len(printer.jobs) == 2


@pytest.mark.parametrize("r2o_options", [{"poll_interval": "30s"}])
async def test_negative_correction_lowers_the_quantity_once(
    sim: Ready2OrderSimulator, printer: VirtualPrinter, config_data: dict[str, Any]
) -> None:
    # Guarantees: a negative line takes part of a dish away (3 → 2: VOID of the 3, the 2 sent
    # again), and neither the next polls nor a restart apply it a second time.
    t2 = table(sim, "2")
    burger = product(sim, "Burger")
    for run in range(2):
        daemon = Daemon(settings_from_dict(config_data), clock=ManualClock())
        async with TestClient(TestServer(daemon.app)) as client:
            sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
            if run == 0:
                sim.create_items(t2, [(burger, 3)])
                await printed(daemon.clock, printer, 1)
                sim.create_items(t2, [(burger, -1)])
                done = await printed(daemon.clock, printer, 3)
                assert done[1].lines[0].text.strip() == "VOID" and "3 x Burger" in done[1].text
                assert "2 x Burger" in done[2].text
            await polls(source(daemon), daemon.clock, 3)
            assert kitchen(daemon) == {"Burger": 2}
    assert len(printer.jobs) == 3


@pytest.mark.parametrize("r2o_options", [{"poll_interval": "30s"}])
async def test_a_stop_between_the_void_and_the_rest_still_sends_the_rest_once(
    sim: Ready2OrderSimulator, printer: VirtualPrinter, config_data: dict[str, Any]
) -> None:
    # A kill -9 after the void of a correction (3 -> 2) committed but before the rest was sent or
    # the return's inbox entry was done: the next run sends the 2 (printed once), later polls and
    # restarts do not send it again.
    t2 = table(sim, "2")
    burger = product(sim, "Burger")
    with_r2o = settings_from_dict(config_data)
    without = settings_from_dict({**config_data, "sources": [{"type": "native"}]})
    daemon = Daemon(with_r2o, clock=ManualClock())
    async with TestClient(TestServer(daemon.app)) as client:
        sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
        sim.create_items(t2, [(burger, 3)])
        await printed(daemon.clock, printer, 1)
        await settled(daemon, sim)
        (order,) = r2o_orders(daemon)
    (neg,) = sim.create_items(t2, [(burger, -1)], notify=False)
    # The state the crash leaves: the return stored, the void committed with the adapter's reason.
    daemon = Daemon(without)
    async with TestClient(TestServer(daemon.app)):
        body = json.dumps({"event": RETURN_EVENT, "resource": [sim.items[neg]]}).encode()
        assert (
            await daemon.source_ctx.inbox.receive("ready2order", f"return:{neg}", body) is not None
        )
        reason = f"returned in ready2order (line {neg})"
        await daemon.service.cancel(
            order.id, item_ids=[order.items[0].id], reason=reason, actor="ready2order"
        )
        await printer.wait_for_jobs(2)
    for _run in range(2):
        daemon = Daemon(with_r2o, clock=ManualClock())
        async with TestClient(TestServer(daemon.app)) as client:
            sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
            await printed(daemon.clock, printer, 3)
            await settled(daemon, sim)
            await polls(source(daemon), daemon.clock, 3)
            assert kitchen(daemon) == {"Burger": 2}
    jobs = printer.jobs
    assert (
        len(jobs) == 3 and jobs[1].lines[0].text.strip() == "VOID" and "2 x Burger" in jobs[2].text
    )


async def test_return_of_a_dish_kds_never_had_is_reported(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a return kds cannot match (ordered before kds ran) is no new dish and not
    # silent: it is listed in /readyz.
    sim.return_items(table(sim, "7"), [(product(sim, "Espresso"), 2)])
    await settled(daemon, sim)
    assert kitchen(daemon) == {}
    ready = await (await hooked.get("/readyz")).json()
    health = next(v for k, v in ready["components"].items() if "ready2order" in k)
    (unmatched,) = health["unmatchedReturns"]
    assert (
        unmatched["product"] == "Espresso"
        and unmatched["quantity"] == "2"
        and unmatched["table"] == "7"
    )


@pytest.mark.parametrize("r2o_options", [{"poll_interval": "30s", "void_statuses": [3]}])
async def test_order_status_is_mapped_and_unknown_values_reported(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: an item whose order_status becomes a void status is voided by the poll; a new
    # item in a void status never reaches the kitchen; an unknown status is made and reported.
    t3, t4 = table(sim, "3"), table(sim, "4")
    (first,) = sim.create_items(t3, [(product(sim, "Burger"), 1)])
    await until(daemon.clock, lambda: first in active_items(daemon))
    sim.set_order_status([first], 3)
    await until(daemon.clock, lambda: first not in active_items(daemon))
    (born_void,) = sim.create_items(t4, [(product(sim, "Steak"), 1)], notify=False)
    sim.set_order_status([born_void], 3)
    (odd,) = sim.create_items(t4, [(product(sim, "Tiramisu"), 1)], notify=False)
    sim.set_order_status([odd], 7)
    await until(daemon.clock, lambda: odd in active_items(daemon))
    await polls(source(daemon), daemon.clock)
    assert born_void not in {i.id for o in r2o_orders(daemon) for i in o.items}
    ready = await (await hooked.get("/readyz")).json()
    health = next(v for k, v in ready["components"].items() if "ready2order" in k)
    assert health["unknownOrderStatus"] == {"7": 1} and health["ok"] is False


@pytest.mark.parametrize("r2o_options", [{"poll_interval": "30s", "missing_fetches": 2}])
async def test_item_removed_without_a_webhook_is_voided_billed_items_are_not(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: voids do not depend on webhooks: an item that vanished from the open table
    # orders and is on no bill is voided (VOID printed); an item that left because its table
    # was billed is left to the cooks.
    t1, t2 = table(sim, "1"), table(sim, "2")
    (removed,) = sim.create_items(t1, [(product(sim, "Steak"), 1)])
    (paid,) = sim.create_items(t2, [(product(sim, "Burger"), 1)])
    await printed(daemon.clock, printer, 2)
    sim.cancel_items([removed], notify=False)  # the orderItem.cancelled webhook is lost
    sim.bill_table(t2)
    void = (await printed(daemon.clock, printer, 3))[2]
    assert void.lines[0].text.strip() == "VOID" and "Steak" in void.text
    await polls(source(daemon), daemon.clock, 3)
    assert kitchen(daemon) == {"Burger": 1}
    assert len(printer.jobs) == 3
    cancelled = next(o for o in r2o_orders(daemon) if o.item(removed)).item(removed)
    assert cancelled is not None
    assert any(
        c.reason == "removed in ready2order" for e in cancelled.endpoints for c in e.status_changes
    )
