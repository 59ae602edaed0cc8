"""PORTOS orders go through the source's durable inbox (issue 15, item 3): each polled order is
stored raw, then processed by the shared inbox worker — in order, retried, resumed on start."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings, settings_from_dict
from kds.model import OrderStatus
from kds.simulators.portos import PortosSimulator
from kds.sources.portos.source import PortosSource

from .test_portos_e2e import TOKEN, kds_orders, portos, sim  # noqa: F401
from .util import base_config, next_poll, polls, wait_until

S = OrderStatus


@pytest.fixture
def config_data(tmp_path: Path, sim: PortosSimulator) -> dict[str, Any]:
    # The default intervals (1 s poll, 10 s reconcile): the tests move the daemon's clock.
    return base_config(tmp_path, sources=[{"type": "portos", "base_url": sim.url, "token": TOKEN}])


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


async def settled(source: PortosSource, clock: ManualClock, n: int = 2) -> None:
    """`n` more polls, and the inbox worker done with what they stored."""
    await polls(source, clock, n)
    await wait_until(lambda: not source.inbox.busy)


async def inbox_row(daemon: Daemon, external_id: str) -> Any:
    return await daemon.store.fetchone(
        "SELECT processed_at, error FROM inbox WHERE source = 'portos' AND dedupe_key = ?",
        (f"order:{external_id}",),
    )


def _unreadable_return() -> dict[str, Any]:
    """An Order with a return line whose plu is not an object: kds cannot tell which dish."""
    grill = [{"name": "grill", "orderItemStatus": "created", "statusChanges": []}]
    return {
        "items": [
            {
                "id": 1,
                "plu": {"name": "Burger", "code": 101},
                "quantity": {"amount": 1, "unit": "pcs"},
                "endpoints": grill,
            },
            {"id": 2, "plu": "oops", "quantity": {"amount": -1}, "endpoints": grill},
        ]
    }


async def test_an_order_with_a_return_kds_cannot_read_is_shown_and_holds_up_no_other_order(
    client: TestClient, daemon: Daemon, sim: PortosSimulator, clock: ManualClock
) -> None:
    # Reading the return used to crash processing (AttributeError on the plu): the order was
    # retried five times and closed. Now it is unreadable like any other: shown to staff, its raw
    # entry kept pending and read again on every poll; the orders after it come in.
    source = portos(daemon)
    bad = sim.put_order(_unreadable_return())
    sim.create_ticket([{"pluCode": 101}])
    await polls(source, clock)
    good = await wait_until(lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    assert good.external_id != bad["id"] and len(kds_orders(daemon)) == 1
    (alert,) = source.health()["alerts"]
    assert alert["kind"] == "order_unreadable" and alert["order"] == bad["id"]
    assert "returned line 2: its plu is not an object" in alert["message"]
    await settled(source, clock, 3)
    assert (await inbox_row(daemon, bad["id"]))["processed_at"] is None
    (still,) = source.health()["alerts"]
    assert still["key"] == alert["key"] and still["count"] > alert["count"]  # read on every poll
    assert len(kds_orders(daemon)) == 1


async def test_a_return_whose_acknowledgement_failed_is_applied_on_the_next_poll_and_closed(
    client: TestClient, daemon: Daemon, sim: PortosSimulator, clock: ManualClock
) -> None:
    # PORTOS refuses the return's acknowledgement once (500): the raw order stays pending, the
    # next poll processes it again, the dish is voided once and the raw entry is closed.
    source = portos(daemon)
    ticket = sim.create_ticket([{"pluCode": 101, "quantity": 2}])
    await settled(source, clock)
    (first,) = kds_orders(daemon)
    returned = sim.add_items(ticket["id"], [{"pluCode": 101, "quantity": -2, "type": "returned"}])
    assert returned is not None
    await sim.set_mode("error", status=500, times=1, path=f"/api/orders/{returned['id']}/items")
    await next_poll(source, clock)  # one poll: the return is applied, its acknowledgement fails
    await wait_until(lambda: not source.inbox.busy)
    assert sim.faults.applied == 1
    assert [e.status for e in first.item(1).endpoints] == [S.PROCESS_SKIPPED]  # type: ignore[union-attr]
    assert (await inbox_row(daemon, returned["id"]))["processed_at"] is None
    await settled(source, clock)
    assert sim.status_of(returned["id"], "grill") == ["processSkipped"]  # acknowledged
    row = await inbox_row(daemon, returned["id"])
    assert row["processed_at"] is not None
    assert len(kds_orders(daemon)) == 1 and source.health()["alerts"] == []


async def test_a_raw_order_pending_at_stop_is_processed_on_start_once(
    config_data: dict[str, Any], sim: PortosSimulator
) -> None:
    # The daemon stopped after the raw order was stored, before it was processed: the next
    # start processes it from the inbox (status written back to PORTOS) and polls add nothing.
    ticket = sim.create_ticket([{"pluCode": 101}])
    (raw,) = [o for o in sim.orders.values() if o["ticket"]["id"] == ticket["id"]]
    without = settings_from_dict({**config_data, "sources": []})
    first = Daemon(without)
    async with TestClient(TestServer(first.app)):
        body = json.dumps(raw, ensure_ascii=False, sort_keys=True).encode()
        assert await first.source_ctx.inbox.receive("portos", f"order:{raw['id']}", body)
    clock = ManualClock()
    second = Daemon(settings_from_dict(config_data), clock=clock)
    async with TestClient(TestServer(second.app)):
        source = portos(second)
        order = await wait_until(lambda: kds_orders(second) and kds_orders(second)[0])
        assert order.external_id == raw["id"]
        await sim.wait_for(lambda: sim.status_of(raw["id"], "grill") == ["sent"])
        await settled(source, clock, 3)
        assert len(kds_orders(second)) == 1
        assert (await inbox_row(second, raw["id"]))["processed_at"] is not None


async def test_an_order_whose_processing_keeps_failing_is_given_up_shown_and_not_retried(
    client: TestClient, daemon: Daemon, sim: PortosSimulator, clock: ManualClock
) -> None:
    # The store refuses one order every time (a trigger added from outside, as a damaged or
    # hand-edited database would): the inbox worker tries it five times, then closes its raw
    # entry with the reason, staff see "could not be processed", later polls leave it alone and
    # the orders after it come in. When PORTOS stops listing it, the alert goes.
    source = portos(daemon)
    bad = sim.create_ticket([{"pluCode": 101}])
    (raw,) = [o for o in sim.orders.values() if o["ticket"]["id"] == bad["id"]]
    with sqlite3.connect(daemon.store.path) as db:
        db.execute(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON orders"
            f" WHEN NEW.external_id = '{raw['id']}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    await polls(source, clock)
    alert = await wait_until(
        lambda: source.health()["alerts"], tick=lambda: clock.advance(source.max_backoff)
    )
    (alert,) = alert
    assert alert["kind"] == "order_failed" and alert["order"] == raw["id"]
    assert "could not be processed" in alert["message"] and "refused" in alert["message"]
    row = await inbox_row(daemon, raw["id"])
    assert row["processed_at"] is not None and row["error"].startswith("failed 5 times")
    assert kds_orders(daemon) == []

    sim.create_ticket([{"pluCode": 101}])
    await settled(source, clock, 3)
    (good,) = kds_orders(daemon)
    assert good.external_id != raw["id"]
    (still,) = source.health()["alerts"]
    assert still["key"] == alert["key"] and still["count"] == alert["count"]  # not tried again

    sim.delete_order(raw["id"])
    await settled(source, clock)
    assert source.health()["alerts"] == []
