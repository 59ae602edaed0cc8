"""kds with a ready2order source against the ready2order simulator (issue 7, "Done when")."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings
from kds.model import Order, OrderStatus
from kds.simulators.ready2order import Ready2OrderSimulator
from kds.sources.ready2order.source import Ready2OrderSource

from .util import advance_until, base_config, polls, until, wait_until

SECRET = "hook-secret-0123456789abcdef"
TOKEN = "acc-token-for-tests"


@pytest.fixture
def sim_options() -> dict[str, Any]:
    """Simulator settings; tests parametrize this."""
    return {}


@pytest.fixture
def r2o_options() -> dict[str, Any]:
    """Source settings; tests parametrize this."""
    return {}


@pytest.fixture
async def sim(sim_options: dict[str, Any]) -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(
        account_token=TOKEN, retry_delays=(0.05, 0.1, 0.2), seed=7, **sim_options
    )
    sim.seed_menu()
    sim.webhook_events.update(
        ("orderItem.created", "orderItem.cancelled", "orderItem.transferred", "product.created")
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(
    tmp_path: Path, sim: Ready2OrderSimulator, r2o_options: dict[str, Any]
) -> dict[str, Any]:
    source = {
        "type": "ready2order",
        "base_url": sim.api_url,
        "account_token": TOKEN,
        "webhook_secret": SECRET,
        # The default windows (3 s ticket window, 2 s refetch) on the daemon's ManualClock,
        # which the tests move (`until`, `settled`).
        "poll_interval": "1h",  # only webhooks fetch, unless a test turns the safety net on
        **r2o_options,
    }
    return base_config(tmp_path, sources=[{"type": "native"}, source])


@pytest.fixture
def manual_clock() -> bool:
    """Whether the daemon runs on a ManualClock (the tests that wait for intervals move it)."""
    return True


@pytest.fixture
def daemon(settings: Settings, manual_clock: bool) -> Daemon:
    return Daemon(settings, clock=ManualClock() if manual_clock else None)


@pytest.fixture
async def hooked(client: TestClient, sim: Ready2OrderSimulator) -> TestClient:
    """The daemon running, with the simulator's webhooks pointed at it."""
    sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    return client


def source(daemon: Daemon) -> Ready2OrderSource:
    return next(s for s in daemon.sources if isinstance(s, Ready2OrderSource))


def r2o_orders(daemon: Daemon) -> list[Order]:
    return [o for o in daemon.service.orders() if o.source == "ready2order"]


def active_items(daemon: Daemon) -> dict[int, Order]:
    """r2o order_id → kds order, for items not cancelled."""
    found = {}
    for order in r2o_orders(daemon):
        for item in order.items:
            if any(e.status is not OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                found[item.id] = order
    return found


def product(sim: Ready2OrderSimulator, name: str) -> int:
    return next(p.id for p in sim.products.values() if p.name == name)


def table(sim: Ready2OrderSimulator, name: str) -> int:
    return next(t for t, n in sim.tables.items() if n == name)


async def settled(daemon: Daemon, sim: Ready2OrderSimulator, timeout: float = 10.0) -> None:
    """Every webhook delivered and the source has nothing outstanding."""
    await sim.wait_delivered(timeout)
    r2o = source(daemon)
    await until(daemon.clock, lambda: not r2o.busy, timeout=timeout)  # ticket windows, refetches


async def test_items_of_one_table_become_one_routed_ticket(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a created webhook → items fetched by id → one ticket at the table, routed by product group.
    burger, lemonade = product(sim, "Burger"), product(sim, "Lemonade")
    ids = sim.create_items(table(sim, "5"), [(burger, 2, "well done"), (lemonade, 1)])
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    (order,) = r2o_orders(daemon)
    assert order.ticket.location is not None and order.ticket.location.table_name == "5"
    by_id = {i.id: i for i in order.items}
    assert by_id[ids[0]].plu.name == "Burger" and by_id[ids[0]].quantity.amount == 2
    assert by_id[ids[0]].comment == "well done"
    assert [e.name for e in by_id[ids[0]].endpoints] == ["grill"]
    assert by_id[ids[1]].plu.group == "Drinks" and [e.name for e in by_id[ids[1]].endpoints] == [
        "bar"
    ]


async def test_course_numbers_are_taken_as_given(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: `order_course` reaches the kitchen as sent, also above 99 (the model takes any course ≥ 0).
    burger = product(sim, "Burger")
    ids = sim.create_items(
        table(sim, "6"),
        [{"product_id": burger, "course": 2}, {"product_id": burger, "course": 150}],
    )
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    (order,) = r2o_orders(daemon)
    assert [order.item(i).course_number for i in ids] == [2, 150]  # type: ignore[union-attr]


async def test_webhook_answers_202_fast_and_wrong_secret_is_404(
    hooked: TestClient, daemon: Daemon
) -> None:
    # Guarantees: 202 once stored (well under 100 ms here); a wrong secret stores nothing.
    body = json.dumps({"event": "orderItem.created", "resource": [999999]})
    start = time.perf_counter()
    resp = await hooked.post(f"/hooks/ready2order/{SECRET}", data=body)
    elapsed = time.perf_counter() - start
    assert resp.status == 202 and elapsed < 0.1
    bad = await hooked.post(
        "/hooks/ready2order/wrong-secret-0123456789",
        data='{"event": "orderItem.created", "resource": [5]}',
    )
    assert bad.status == 404
    rows = await daemon.store.fetchall("SELECT payload FROM inbox WHERE source = 'ready2order'")
    assert [bytes(r["payload"]) for r in rows] == [body.encode()]


async def test_duplicate_deliveries_are_processed_once(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a retried/duplicated webhook is kept once and yields one ticket.
    sim.set_webhook_mode("duplicate", times=2)
    a = sim.create_items(table(sim, "1"), [(product(sim, "Steak"), 1)])
    b = sim.create_items(table(sim, "2"), [(product(sim, "Espresso"), 2)])
    await settled(daemon, sim)
    assert sum(1 for d in sim.deliveries if d.delivered) == 4
    rows = await daemon.store.fetchall("SELECT id FROM inbox WHERE source = 'ready2order'")
    assert len(rows) == 2
    assert set(active_items(daemon)) == {*a, *b}
    assert len(r2o_orders(daemon)) == 2


async def test_cancel_voids_the_item(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: orderItem.cancelled → processSkipped on every endpoint of that item only.
    ids = sim.create_items(
        table(sim, "3"), [(product(sim, "Burger"), 1), (product(sim, "Pilsner"), 1)]
    )
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    sim.cancel_items([ids[1]])
    await until(daemon.clock, lambda: set(active_items(daemon)) == {ids[0]})
    (order,) = r2o_orders(daemon)
    beer = order.item(ids[1])
    assert beer is not None and all(e.status is OrderStatus.PROCESS_SKIPPED for e in beer.endpoints)
    assert any(
        c.reason == "cancelled in ready2order" for e in beer.endpoints for c in e.status_changes
    )


async def test_reordered_delivery_cancel_before_create_ends_correct(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a cancel that overtakes its create leaves nothing active; other tables are unaffected.
    sim.set_webhook_mode("hold")
    doomed = sim.create_items(table(sim, "4"), [(product(sim, "Gazpacho"), 1)])
    sim.cancel_items(doomed)
    kept = sim.create_items(table(sim, "6"), [(product(sim, "Tiramisu"), 1)])
    sim.release(reverse=True)
    await settled(daemon, sim)
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(kept))
    assert doomed[0] not in active_items(daemon)


async def test_transfer_moves_the_ticket_also_when_it_overtakes_the_create(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: orderItem.transferred updates the table (new version); out of order it still ends at the new table.
    t1, t2, t7, t8 = (table(sim, n) for n in ("1", "2", "7", "8"))
    ids = sim.create_items(t1, [(product(sim, "Burger"), 1)])
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    order = active_items(daemon)[ids[0]]
    version = order.version
    sim.transfer_items(t1, t2)
    await until(
        daemon.clock,
        lambda: order.ticket.location is not None and order.ticket.location.table_name == "2",
    )
    assert order.version > version and order.ticket.name == "Table 2"

    sim.set_webhook_mode("hold")
    late = sim.create_items(t7, [(product(sim, "Steak"), 1)])
    sim.transfer_items(t7, t8, late)
    sim.release(reverse=True)
    await settled(daemon, sim)
    moved = await until(daemon.clock, lambda: active_items(daemon).get(late[0]))
    assert moved.ticket.location is not None and moved.ticket.location.table_name == "8"


@pytest.mark.parametrize(("manual_clock", "r2o_options"), [(True, {"poll_interval": "30s"})])
async def test_lost_webhook_is_recovered_by_the_safety_net_poll(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: an item whose webhook never arrived reaches the screens through the periodic poll
    # (the default 30 s of it, on the daemon's clock: not before, and without a webhook).
    clock = daemon.clock
    assert isinstance(clock, ManualClock)
    r2o = source(daemon)
    await wait_until(lambda: r2o.waiting)  # the first poll (at start) is done
    sim.set_webhook_mode("drop", times=1)
    lost = sim.create_items(table(sim, "9"), [(product(sim, "Caesar salad"), 1)])
    assert sim.deliveries[-1].dropped
    await clock.advance(29)
    assert r2o.waiting and r2o.poll_count == 1  # not polled before its interval
    found = lambda: [o for o in r2o_orders(daemon) if o.item(lost[0])]  # noqa: E731
    await advance_until(clock, found, step=1)  # the poll, then the ticket's group window
    (order,) = found()
    item = order.item(lost[0])
    assert item is not None and [e.name for e in item.endpoints] == ["cold"]


async def test_burst_of_200_webhooks_stays_under_the_limit(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: 200 create webhooks → all 200 items on the screens, ≤ 60 requests/min, no 429 storm.
    products = list(sim.products)
    tables = list(sim.tables)
    ids = []
    for n in range(200):
        ids += sim.create_items(tables[n % len(tables)], [(products[n % len(products)], 1)])
    await sim.wait_delivered(20)
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids), timeout=60)
    assert len({i for o in r2o_orders(daemon) for i in (x.id for x in o.items)}) == 200
    assert sim.throttled == 0
    assert sim.max_admitted_in_period() <= 60
    assert len(sim.requests) < 60  # one fetch serves many webhooks


# The simulator limits per real second: kds's retries must wait real time too, so this test
# keeps the system clock (with short windows so it does not take minutes).
@pytest.mark.parametrize("sim_options", [{"rate_limit": 2, "rate_period": 1.0}])
@pytest.mark.parametrize(
    ("manual_clock", "r2o_options"),
    [(False, {"group_window": "100ms", "refetch_delay": "50ms", "max_backoff": "1s"})],
)
async def test_429_is_honoured_with_backoff(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: when the POS limits harder than configured, kds backs off on 429 and still gets everything.
    products, tables = list(sim.products), list(sim.tables)
    ids = []
    for n in range(30):
        ids += sim.create_items(tables[n % len(tables)], [(products[n % len(products)], 1)])
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids), timeout=30)
    assert sim.throttled >= 1
    assert sim.throttled <= 10  # backoff, not a storm
    assert source(daemon).bucket.throttled == sim.throttled


@pytest.mark.parametrize(
    "r2o_options", [{"training": "ignore"}, {"training": "mark", "poll_interval": "30s"}]
)
async def test_training_orders_are_ignored_or_marked(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, r2o_options: dict[str, Any]
) -> None:
    # Guarantees: training-mode items never look like real orders.
    training = sim.create_items(table(sim, "1"), [(product(sim, "Burger"), 1)], training=True)
    live = sim.create_items(table(sim, "2"), [(product(sim, "Steak"), 1)])
    if r2o_options["training"] == "ignore":
        await settled(daemon, sim)
        await until(daemon.clock, lambda: set(active_items(daemon)) == set(live))
    else:
        await until(daemon.clock, lambda: set(active_items(daemon)) == {*training, *live})
        marked = active_items(daemon)[training[0]]
        assert marked.ticket.name is not None and marked.ticket.name.startswith("TRAINING")
        assert not (active_items(daemon)[live[0]].ticket.name or "").startswith("TRAINING")


@pytest.mark.parametrize("style", ["ids", "objects"])
async def test_other_plausible_payload_shapes(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, style: str
) -> None:
    # Guarantees: the reader is not tied to one JSON shape of the webhook.
    sim.payload_style = style
    ids = sim.create_items(table(sim, "3"), [(product(sim, "Espresso"), 1)])
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    sim.cancel_items(ids)
    await until(daemon.clock, lambda: not active_items(daemon))


async def test_unreadable_webhook_is_kept_logged_and_triggers_a_fetch(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a body kds cannot read is stored with the reason, never dropped, and a fetch still finds the items.
    sim.set_webhook_mode("drop", times=1)
    ids = sim.create_items(table(sim, "4"), [(product(sim, "Burger"), 1)])
    resp = await hooked.post(f"/hooks/ready2order/{SECRET}", data=b"<xml>orderItem</xml>")
    assert resp.status == 202
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(ids))
    row = await daemon.store.fetchone(
        "SELECT payload, error FROM inbox WHERE source = 'ready2order'"
    )
    assert bytes(row["payload"]) == b"<xml>orderItem</xml>" and "not JSON" in row["error"]


async def test_webhooks_kept_while_the_api_failed_are_processed_after_a_restart(
    config_data: dict[str, Any], sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a webhook whose fetch failed stays in the inbox and is processed on the next start.
    from aiohttp.test_utils import TestServer

    from kds.config import settings_from_dict

    ids = sim.create_items(table(sim, "5"), [(product(sim, "Burger"), 1)], notify=False)
    body = json.dumps({"event": "orderItem.created", "resource": ids})
    broken = {
        **config_data,
        "sources": [{**config_data["sources"][1], "account_token": "revoked-token"}],
    }
    first = Daemon(settings_from_dict(broken), clock=ManualClock())
    async with TestClient(TestServer(first.app)) as c:
        assert (await c.post(f"/hooks/ready2order/{SECRET}", data=body)).status == 202
        await until(first.clock, lambda: source(first).health()["consecutiveFailures"] >= 1)
        assert not active_items(first)
    second = Daemon(settings_from_dict(config_data), clock=ManualClock())
    async with TestClient(TestServer(second.app)):
        await until(second.clock, lambda: set(active_items(second)) == set(ids))

        async def inbox_drained() -> bool:  # marked done just after the items were stored
            return not await second.source_ctx.inbox.pending("ready2order")

        await until(second.clock, inbox_drained)


async def test_product_created_webhook_routes_new_products(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a product added after kds loaded the catalogue is routed by its group (from product.created).
    await wait_until(lambda: source(daemon).poll_count >= 1)  # the catalogue was loaded at start
    mojito = sim.add_product("Mojito", "Drinks", "7.50")
    await sim.wait_delivered()
    ids = sim.create_items(table(sim, "2"), [(mojito, 1)])
    order = await until(daemon.clock, lambda: active_items(daemon).get(ids[0]))
    item = order.item(ids[0])
    assert (
        item is not None
        and item.plu.group == "Drinks"
        and [e.name for e in item.endpoints] == ["bar"]
    )


@pytest.mark.parametrize("sim_options", [{"rate_period": 1.0}])  # 60 a second: polls need not queue
@pytest.mark.parametrize("r2o_options", [{"poll_interval": "30s"}])
async def test_unbilled_items_keep_their_finished_order_live_past_the_archive_age(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: items still open on a table longer than `archive_after` keep their cooked
    # order in the live view, so the safety-net poll does not send them to the kitchen again;
    # once the table is billed the order is archived as usual.
    from datetime import timedelta

    from kds.model import utcnow

    r2o = source(daemon)
    tid = table(sim, "4")
    sim.create_items(tid, [(product(sim, "Burger"), 1)])
    (order,) = await until(daemon.clock, lambda: r2o_orders(daemon), timeout=10)
    for status in (OrderStatus.DELIVERED, OrderStatus.PROCESSED):
        await daemon.service.set_status(order.id, status)
    await polls(r2o, daemon.clock)
    two_days_on = utcnow() + timedelta(days=2)
    assert await daemon.service.archive_finished(now=two_days_on) == 0
    await polls(r2o, daemon.clock)
    assert [o.id for o in r2o_orders(daemon)] == [order.id]  # nothing sent again
    sim.bill_table(tid)
    await polls(r2o, daemon.clock)
    assert await daemon.service.archive_finished(now=two_days_on) == 1
    await polls(r2o, daemon.clock)
    assert r2o_orders(daemon) == []


async def test_a_ticket_the_store_refuses_is_shown_to_staff_until_the_till_drops_its_items(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a table's ticket kds cannot store (here the store refuses it, as a damaged or
    # hand-edited database would) is not dropped in silence: staff see an alert naming the table
    # and the reason, the source reports it on /readyz, the next tables' tickets come in, and
    # the alert goes when ready2order no longer lists the refused items (billed or removed).
    r2o = source(daemon)
    with sqlite3.connect(daemon.store.path) as db:
        db.execute(
            "CREATE TRIGGER refuse_r2o BEFORE INSERT ON orders WHEN NEW.source = 'ready2order'"
            " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
    refused = sim.create_items(table(sim, "5"), [(product(sim, "Burger"), 1)])
    await settled(daemon, sim)
    assert r2o_orders(daemon) == []
    (alert,) = r2o.health()["alerts"]
    assert alert["kind"] == "order_rejected" and "table 5" in alert["message"]
    assert "refused by a trigger" in alert["message"]
    assert not r2o.health()["ok"] and "table 5" in r2o.health()["reason"]
    ready = await hooked.get("/readyz")
    assert ready.status == 200 and "table 5" in (await ready.json())["reasons"]["ready2order"]

    with sqlite3.connect(daemon.store.path) as db:
        db.execute("DROP TRIGGER refuse_r2o")
    later = sim.create_items(table(sim, "9"), [(product(sim, "Lemonade"), 1)])
    await until(daemon.clock, lambda: set(active_items(daemon)) == set(later))
    assert [a["key"] for a in r2o.health()["alerts"]] == [alert["key"]]  # still shown

    sim.cancel_items(refused, notify=False)  # removed at the till
    await polls(r2o, daemon.clock)
    assert r2o.health()["alerts"] == [] and r2o.health()["ok"]
    assert set(active_items(daemon)) == set(later)  # and not sent to the kitchen after all
