"""kds with a cheques source against the cheques simulator (issue 7, "Done when")."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings, settings_from_dict
from kds.model import Order, OrderItem, OrderStatus
from kds.simulators.cheques import ChequesSimulator
from kds.sources.cheques.source import ChequesSource

from .util import base_config, wait_until
from .util import polls as util_polls


@pytest.fixture
def sim_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def source_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sim(sim_options: dict[str, Any]) -> AsyncIterator[ChequesSimulator]:
    sim = ChequesSimulator(seed=3, **sim_options)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(
    tmp_path: Path, sim: ChequesSimulator, source_options: dict[str, Any]
) -> dict[str, Any]:
    # The default intervals (2 s, backoff up to 30 s): the tests move the daemon's clock.
    source = {"type": "cheques", "url": sim.endpoint_url, **source_options}
    return base_config(tmp_path, sources=[source])


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


def cheques(daemon: Daemon) -> ChequesSource:
    return next(s for s in daemon.sources if isinstance(s, ChequesSource))


async def polls(daemon: Daemon, n: int = 2) -> None:
    """Let `n` more polls finish (the second one surely saw the latest change), and the inbox
    worker process the cheques they read (see `tests.util.polls`)."""
    src = cheques(daemon)
    await util_polls(src, daemon.clock, n)
    await wait_until(lambda: not src.inbox.busy)


def orders_of(daemon: Daemon, uuid: str) -> list[Order]:
    return sorted(
        (
            o
            for o in daemon.service.orders()
            if o.source == "cheques" and o.external_id.startswith(uuid)
        ),
        key=lambda o: o.created_at,
    )


def live(item: OrderItem) -> bool:
    return any(e.status is not OrderStatus.PROCESS_SKIPPED for e in item.endpoints)


def kitchen(daemon: Daemon, uuid: str) -> dict[str, Decimal]:
    """What the kitchen has to make for a cheque: live quantity per label."""
    totals: dict[str, Decimal] = {}
    for order in orders_of(daemon, uuid):
        for item in order.items:
            if live(item):
                totals[item.plu.name] = totals.get(item.plu.name, Decimal(0)) + Decimal(
                    item.quantity.amount
                )
    return totals


async def test_cheque_gaining_and_losing_items_over_time(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: new items / higher quantities → new orders with only the difference; fewer → VOIDs.
    uuid = sim.open_cheque("Чек 2", table=2, place=3)
    tea = sim.add_item(uuid, "5", 1, name="Чай")
    await polls(daemon)
    (first,) = orders_of(daemon, uuid)
    assert (
        first.ticket.name == "Чек 2"
        and first.ticket.location
        and first.ticket.location.table_name == "2 · 3"
    )
    assert kitchen(daemon, uuid) == {"Чай": 1}

    sim.add_item(uuid, "6.5", 2, name="Борщ", code=10)
    sim.set_quantity(uuid, tea, 3)
    await polls(daemon)
    assert len(orders_of(daemon, uuid)) == 2
    second = orders_of(daemon, uuid)[1]
    assert sorted((i.plu.name, i.quantity.amount) for i in second.items) == [
        ("Борщ", 2),
        ("Чай", 2),
    ]
    assert kitchen(daemon, uuid) == {"Чай": 3, "Борщ": 2}

    sim.set_quantity(uuid, tea, 1)  # two teas fewer: the newest tea item (2) is voided
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Чай": 1, "Борщ": 2}
    voided = [i for o in orders_of(daemon, uuid) for i in o.items if not live(i)]
    assert [(i.plu.name, i.quantity.amount) for i in voided] == [("Чай", 2)]
    assert len(orders_of(daemon, uuid)) == 2

    sim.remove_item(uuid, tea)
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Борщ": 2}


async def test_partial_reduction_voids_and_resends_the_rest(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: 3 → 1 of one item: that item is voided and 1 is sent again, so the kitchen makes exactly 1.
    uuid = sim.open_cheque(table=4)
    pos = sim.add_item(uuid, "7.2", 3, name="Драники", code=11)
    await polls(daemon)
    sim.set_quantity(uuid, pos, 1)
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Драники": 1}
    assert len(orders_of(daemon, uuid)) == 2


async def test_nameless_items_are_labelled_and_diffed_as_a_multiset(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: lines without name/code reach the kitchen by position and price; removing one of two equal lines voids one.
    uuid = sim.open_cheque(cheque_type="Postponed")
    sim.add_item(uuid, "5", 1)
    sim.add_item(uuid, "5", 3, discount_percent="10")
    sim.add_item(uuid, "5", 3, code=10)
    await polls(daemon)
    (order,) = orders_of(daemon, uuid)
    names = sorted(i.plu.name for i in order.items)
    assert names == ["#1 · 5.00", "#3 · 5.00 (code 10)"]
    assert {i.plu.name: i.quantity.amount for i in order.items}["#1 · 5.00"] == 4
    assert order.ticket.location is None
    sim.remove_item(uuid, 0)  # positions shift; the multiset loses one nameless unit
    await polls(daemon)
    assert sum(kitchen(daemon, uuid).values()) == 6
    assert kitchen(daemon, uuid)["#3 · 5.00 (code 10)"] == 3


async def test_disappearing_cheque_is_finished_not_voided(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: a paid cheque leaves its tickets to the cooks; it is no longer tracked.
    uuid = sim.open_cheque(table=1)
    sim.add_item(uuid, "4.5", 1, name="Кофе", code=13)
    await polls(daemon)
    sim.close_cheque(uuid)
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Кофе": 1}
    assert uuid in cheques(daemon).finished


async def test_an_open_cheque_keeps_its_finished_orders_live_past_the_archive_age(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: a cheque open longer than `archive_after` (a hotel tab) keeps its cooked
    # orders in the live view, so its lines are not sent to the kitchen again; once paid, the
    # orders are archived as usual.
    from datetime import timedelta

    from kds.model import OrderStatus, utcnow

    uuid = sim.open_cheque(table=6)
    sim.add_item(uuid, "4.5", 1, name="Кофе", code=13)
    await polls(daemon)
    (order,) = orders_of(daemon, uuid)
    await daemon.service.set_status(order.id, OrderStatus.DELIVERED)
    await daemon.service.set_status(order.id, OrderStatus.PROCESSED)
    two_days_on = utcnow() + timedelta(days=2)
    assert await daemon.service.archive_finished(now=two_days_on) == 0
    await polls(daemon)
    assert [o.id for o in orders_of(daemon, uuid)] == [order.id]  # nothing sent again
    sim.close_cheque(uuid)
    await polls(daemon)
    assert await daemon.service.archive_finished(now=two_days_on) == 1
    assert orders_of(daemon, uuid) == []


async def test_errors_change_nothing_and_polling_recovers(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: 500, garbage, HTML and resultCode 488 fail the poll without touching orders; no duplicates after.
    uuid = sim.open_cheque(table=5)
    sim.add_item(uuid, "8", 1, name="Салат оливье", code=500)
    await polls(daemon)
    await sim.set_mode("error", times=1, status=500)
    sim.then_mode("garbage")
    sim.then_mode("result", code=488)
    sim.then_mode("html")
    await polls(daemon, 4)
    errors = daemon.registry.get_sample_value(
        "kds_source_polls_total", {"source": "cheques", "outcome": "error"}
    )
    assert errors is not None and errors >= 4
    await polls(daemon, 2)
    assert cheques(daemon).health()["ok"] is True
    assert len(orders_of(daemon, uuid)) == 1 and kitchen(daemon, uuid) == {"Салат оливье": 1}
    # routed by product code like any other item
    assert [e.name for e in orders_of(daemon, uuid)[0].items[0].endpoints] == ["cold"]


@pytest.mark.parametrize(
    ("sim_options", "source_options"),
    [({"pin": "4321", "method": "PUT"}, {"pin": "4321", "method": "PUT"})],
)
async def test_pin_auth_and_configurable_method(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: the AUTH intent's token is sent as Auth-token; method and URL come from config.
    uuid = sim.open_cheque(table=3)
    sim.add_item(uuid, "5", 2, name="Чай")
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Чай": 2}
    intents = [r["intent"] for r in sim.requests]
    assert intents[0] == "AUTH" and "GET_CHEQUES" in intents
    assert all(r["token"] in sim.tokens for r in sim.requests if r["intent"] == "GET_CHEQUES")
    sim.tokens.clear()  # the terminal forgot the session: kds logs in again
    await polls(daemon, 3)
    assert [r["intent"] for r in sim.requests].count("AUTH") >= 2
    assert cheques(daemon).health()["ok"] is True


async def test_restart_resumes_without_duplicates(
    config_data: dict[str, Any], sim: ChequesSimulator
) -> None:
    # Guarantees: after a restart the diff starts from what kds stored: nothing re-sent, later changes still seen.
    uuid = sim.open_cheque(table=6)
    sim.add_item(uuid, "5", 1, name="Чай")
    first = Daemon(settings_from_dict(config_data), clock=ManualClock())
    async with TestClient(TestServer(first.app)):
        await polls(first)
    sim.add_item(uuid, "6.5", 1, name="Борщ", code=10)
    second = Daemon(settings_from_dict(config_data), clock=ManualClock())
    async with TestClient(TestServer(second.app)):
        await polls(second)
        assert kitchen(second, uuid) == {"Чай": 1, "Борщ": 1}
        assert len(orders_of(second, uuid)) == 2


async def test_the_poll_interval_is_waited_on_the_daemon_clock(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: pollers take the daemon's clock: 2 s of it, not of real time, bring the next poll.
    src = cheques(daemon)
    clock = daemon.clock
    assert isinstance(clock, ManualClock) and src.interval == 2.0
    await wait_until(lambda: src.waiting and src.poll_count == 1)
    await clock.advance(1.9)
    assert src.waiting and src.poll_count == 1
    await clock.advance(0.2)
    await wait_until(lambda: src.poll_count == 2)


async def test_a_poll_asked_for_during_a_poll_still_happens(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: poll_now() (a webhook) while a poll is under way brings one more poll at once:
    # the running poll may have read the POS before the change the webhook announces.
    src = cheques(daemon)
    clock = daemon.clock
    assert isinstance(clock, ManualClock)
    await wait_until(lambda: src.waiting and src.poll_count == 1)
    await sim.set_mode("hang")
    await clock.advance(2)
    assert not src.waiting  # the second poll is under way, its request hanging
    src.poll_now()
    await sim.set_mode("online")
    await wait_until(lambda: src.poll_count == 3)  # without the clock moving


async def inbox_rows(daemon: Daemon, uuid: str) -> list[Any]:
    rows = await daemon.store.fetchall(
        "SELECT payload, processed_at, error FROM inbox WHERE source = 'cheques' ORDER BY id"
    )
    return [r for r in rows if json.loads(r["payload"])["info"]["uuid"] == uuid]


async def test_each_cheque_read_is_kept_raw_before_it_reaches_the_kitchen(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: the cheque as the API gave it is stored in the inbox, then processed and
    # closed; an unchanged cheque is not stored again, a changed one is.
    uuid = sim.open_cheque(table=7)
    sim.add_item(uuid, "5", 2, name="Чай")
    await polls(daemon)
    (row,) = await inbox_rows(daemon, uuid)
    assert json.loads(row["payload"])["items"][0]["name"] == "Чай"
    assert row["processed_at"] is not None and row["error"] is None
    assert kitchen(daemon, uuid) == {"Чай": 2}
    await polls(daemon, 3)
    assert len(await inbox_rows(daemon, uuid)) == 1
    sim.add_item(uuid, "6.5", 1, name="Борщ", code=10)
    await polls(daemon)
    assert len(await inbox_rows(daemon, uuid)) == 2
    assert kitchen(daemon, uuid) == {"Чай": 2, "Борщ": 1}


async def test_a_raw_cheque_pending_at_stop_is_processed_on_start(
    config_data: dict[str, Any], sim: ChequesSimulator
) -> None:
    # Guarantees: a cheque stored raw but not processed before a stop reaches the kitchen on
    # the next start, from the inbox (the API answers only 500 meanwhile), and only once.
    uuid = sim.open_cheque(table=8)
    sim.add_item(uuid, "5", 2, name="Чай")
    raw = {
        "info": {"uuid": uuid, "name": "Стол 8", "chequeType": "Order", "table": "8"},
        "items": [{"name": "Чай", "code": None, "price": "5", "quantity": "2"}],
    }
    first = Daemon(settings_from_dict({**config_data, "sources": []}))
    async with TestClient(TestServer(first.app)):
        body = json.dumps(raw, ensure_ascii=False).encode()
        assert await first.source_ctx.inbox.receive("cheques", f"cheque:{uuid}:stopped", body)
    await sim.set_mode("error", status=500)
    second = Daemon(settings_from_dict(config_data), clock=ManualClock())
    async with TestClient(TestServer(second.app)):
        await wait_until(lambda: kitchen(second, uuid) == {"Чай": 2})
        await wait_until(lambda: cheques(second).health()["consecutiveFailures"] >= 1)
        await sim.set_mode("online")
        await polls(second, 3)
        assert kitchen(second, uuid) == {"Чай": 2} and len(orders_of(second, uuid)) == 1
        assert all(r["processed_at"] is not None for r in await inbox_rows(second, uuid))


async def test_a_cheque_the_store_refuses_is_given_up_shown_to_staff_and_retried_when_it_changes(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator, clock: ManualClock
) -> None:
    # Guarantees: when the store refuses a cheque's new order (a trigger added from outside, as a
    # damaged or hand-edited database would), kds tries that one order number a few times — not a
    # hundred numbers per try — then shows staff the cheque and the reason, does not try the
    # unchanged cheque again on every poll, and takes it once it changes and the store accepts.
    src = cheques(daemon)
    with sqlite3.connect(daemon.store.path) as db:
        db.execute(
            "CREATE TRIGGER refuse_cheques BEFORE INSERT ON orders WHEN NEW.source = 'cheques'"
            " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
    uuid = sim.open_cheque(table=5)
    sim.add_item(uuid, "8", 1, name="Борщ", code=500)
    with capture_logs() as logs:
        await util_polls(src, clock, 1)
        alerts = await wait_until(
            lambda: src.health()["alerts"], tick=lambda: clock.advance(1), timeout=10
        )
        (alert,) = alerts
        assert alert["kind"] == "order_failed" and alert["order"] == uuid
        assert "table 5" in alert["message"] and "refused by a trigger" in alert["message"]
        assert not src.health()["ok"] and "table 5" in src.health()["reason"]
        await polls(daemon, 2)  # the unchanged cheque is left alone
    refusals = [e for e in logs if e["event"] == "store.write_rejected"]
    assert 1 <= len(refusals) <= 5  # the inbox worker's attempts, one order number each
    assert orders_of(daemon, uuid) == [] and src.health()["alerts"] == [alert]

    with sqlite3.connect(daemon.store.path) as db:
        db.execute("DROP TRIGGER refuse_cheques")
    sim.add_item(uuid, "5", 1, name="Компот", code=700)
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Борщ": 1, "Компот": 1}
    assert src.health()["alerts"] == [] and src.health()["ok"]
