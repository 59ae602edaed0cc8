"""Pacing through the API: courses held and fired, prep-time release, auto-bump, scheduled orders.

Time is a ManualClock injected into the daemon: tests move it forward, nothing sleeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings, settings_from_dict
from kds.model import utcnow

from .util import base_config, order_body, wait_until

GRILL_HOLDS = {"name": "grill", "display": True, "hold_courses": True, "fire_delay": "2m"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


async def advance_to(clock: ManualClock, when: datetime) -> None:
    """Move the clock to one second past `when` (the server stamps changes at its own time)."""
    await clock.advance((when - clock.utcnow()).total_seconds() + 1)


def endpoints(grill: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The test restaurant's stations, the grill configured as given."""
    return [grill or {"name": "grill"}, {"name": "cold"}, {"name": "bar"}]


def coursed_order(external_id: str = "c-1", **overrides: Any) -> dict[str, Any]:
    """Soup (course 1), steak (course 2) at the grill, a beer for the bar (no course)."""
    return order_body(
        external_id,
        items=[
            {"id": 1, "plu": {"name": "Soup"}, "courseNumber": 1},
            {"id": 2, "plu": {"name": "Steak", "group": "Grill"}, "courseNumber": 2},
            {"id": 3, "plu": {"name": "Pilsner", "group": "Drinks"}},
        ],
        **overrides,
    )


async def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def order_of(client: TestClient, order_id: str) -> dict[str, Any]:
    return await (await client.get(f"/api/v1/orders/{order_id}")).json()


def status(order: dict[str, Any], item_id: int, endpoint: str) -> str:
    item = next(i for i in order["items"] if i["id"] == item_id)
    return next(e["status"] for e in item["endpoints"] if e["name"] == endpoint)


async def bump(client: TestClient, order_id: str, endpoint: str) -> None:
    for target in ("delivered", "accepted", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order_id}/endpoints/{endpoint}/status", json={"status": target}
        )
        assert response.status == 200, await response.text()


async def released(client: TestClient, order_id: str, item_id: int, endpoint: str) -> bool:
    order = await order_of(client, order_id)
    return status(order, item_id, endpoint) == "sent" and not any(
        h["itemId"] == item_id and h["endpoint"] == endpoint for h in order["holds"]
    )


# --------------------------------------------------------------------------- courses


@pytest.fixture
def config_data(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The grill holds courses (fire_delay 2m) unless a test parametrizes other overrides."""
    return base_config(
        tmp_path, **{"endpoints": endpoints(GRILL_HOLDS), **getattr(request, "param", {})}
    )


async def test_later_course_is_held_until_fired_by_hand(client: TestClient, daemon: Daemon) -> None:
    # Guarantees: at a hold_courses endpoint course 2 is held (created, listed in holds, not
    # workable: 409 "held"); the fire route releases it (sent), audited, written to the feed.
    order = await post(client, coursed_order())
    assert status(order, 1, "grill") == "sent" and status(order, 3, "bar") == "sent"
    assert status(order, 2, "grill") == "created"
    assert order["holds"] == [
        {"itemId": 2, "endpoint": "grill", "reason": "course", "course": 2, "releaseAt": None}
    ]
    refused = await client.post(
        f"/api/v1/orders/{order['id']}/endpoints/grill/items/2/status", json={"status": "accepted"}
    )
    assert refused.status == 409
    assert (await refused.json())["error"] == "held"
    async with client.session.ws_connect(f"{client.make_url('/api/v1/ws')}?endpoint=grill") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        fired = await client.post(f"/api/v1/orders/{order['id']}/courses/2/fire")
        assert fired.status == 200, await fired.text()
        event = await ws.receive_json(timeout=5)
        while event["type"] != "order.updated":
            event = await ws.receive_json(timeout=5)
    assert {"itemId": 2, "endpoint": "grill", "status": "sent", "from": "created"} in event[
        "changes"
    ]
    body = await fired.json()
    assert body["holds"] == [] and status(body, 2, "grill") == "sent"
    change = next(i for i in body["items"] if i["id"] == 2)["endpoints"][0]["statusChanges"][-1]
    assert change["reason"] == "course 2 fired"
    again = await client.post(f"/api/v1/orders/{order['id']}/courses/2/fire")
    assert again.status == 200 and (await again.json())["version"] == body["version"]


async def test_a_bump_of_the_endpoint_leaves_the_held_course_alone(client: TestClient) -> None:
    # Guarantees: accept and bump of the whole ticket act on the released items only.
    order = await post(client, coursed_order())
    await bump(client, order["id"], "grill")
    after = await order_of(client, order["id"])
    assert status(after, 1, "grill") == "processed" and status(after, 2, "grill") == "created"


async def test_next_course_fires_its_fire_delay_after_the_previous_course_is_bumped(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # Guarantees: course 2 fires by itself fire_delay (2m) after the last course-1 item is bumped.
    order = await post(client, coursed_order())
    await bump(client, order["id"], "grill")
    bumped = datetime.fromisoformat(
        (await order_of(client, order["id"]))["items"][0]["endpoints"][0]["statusChanges"][-1][
            "date"
        ]
    )
    await wait_until(lambda: daemon.timers.deadline(order["id"]) is not None)
    assert daemon.timers.deadline(order["id"]) == bumped + timedelta(minutes=2)
    assert not await released(client, order["id"], 2, "grill")
    await advance_to(clock, bumped + timedelta(minutes=2))
    await wait_until(lambda: released(client, order["id"], 2, "grill"))
    rows = await daemon.store.fetchall(
        "SELECT actor, reason FROM status_changes WHERE item_id = 2 AND status = 'sent'"
    )
    assert [tuple(r) for r in rows] == [("timer", "course 2 fired")]


async def test_unknown_course_order_and_bad_numbers_are_clear_errors(client: TestClient) -> None:
    # Guarantees: 404 for a missing order or course, 400 for a course that is not a number.
    order = await post(client, coursed_order())
    missing = await client.post("/api/v1/orders/nope/courses/2/fire")
    assert missing.status == 404
    no_course = await client.post(f"/api/v1/orders/{order['id']}/courses/7/fire")
    assert no_course.status == 404 and "no course 7" in (await no_course.json())["detail"]
    bad = await client.post(f"/api/v1/orders/{order['id']}/courses/²/fire")
    assert bad.status == 400


async def test_cancelling_a_held_course_drops_its_hold(client: TestClient) -> None:
    # Guarantees: a held item can be cancelled; its hold goes with it (nothing fires later).
    order = await post(client, coursed_order())
    response = await client.post(
        f"/api/v1/orders/{order['id']}/items/2/status", json={"status": "processSkipped"}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["holds"] == [] and status(body, 2, "grill") == "processSkipped"


async def test_holds_survive_a_restart(
    tmp_path: Path, aiohttp_client: Any, settings: Settings
) -> None:
    # Guarantees: held courses are stored, not only in memory: after a restart they are still
    # held and fire normally.
    first = Daemon(settings, clock=ManualClock())
    client = await aiohttp_client(first.app)
    order = await post(client, coursed_order())
    await client.close()
    second = Daemon(settings, clock=ManualClock())
    client = await aiohttp_client(second.app)
    again = await order_of(client, order["id"])
    assert again["holds"] == order["holds"] and status(again, 2, "grill") == "created"
    fired = await client.post(f"/api/v1/orders/{order['id']}/courses/2/fire")
    assert status(await fired.json(), 2, "grill") == "sent"
    await client.close()


# --------------------------------------------------------------------------- prep time


@pytest.mark.parametrize(
    "config_data",
    [
        {
            "prep_times": [
                {"product_group": "Grill", "time": "12m"},
                {"name_pattern": "*salad*", "time": "4m"},
            ]
        }
    ],
    indirect=True,
)
async def test_items_are_released_so_they_finish_together(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # Guarantees: the longest item starts at once, a 4-minute salad waits 8 minutes (releaseAt
    # on the order), an item without a prep time is not held; the clock releases the salad.
    order = await post(
        client,
        order_body(
            "p-1",
            items=[
                {"id": 1, "plu": {"name": "Ribeye", "group": "Grill"}},
                {"id": 2, "plu": {"name": "Caesar salad"}},
                {"id": 3, "plu": {"name": "Pilsner", "group": "Drinks"}},
            ],
        ),
    )
    assert status(order, 1, "grill") == "sent" and status(order, 3, "bar") == "sent"
    [hold] = order["holds"]
    assert (hold["itemId"], hold["endpoint"], hold["reason"]) == (2, "cold", "prep")
    created = datetime.fromisoformat(order["createdAt"])
    assert datetime.fromisoformat(hold["releaseAt"]) == created + timedelta(minutes=8)
    await advance_to(clock, created + timedelta(minutes=8))
    await wait_until(lambda: released(client, order["id"], 2, "cold"))


# --------------------------------------------------------------------------- auto-bump


@pytest.mark.parametrize(
    "config_data",
    [{"endpoints": endpoints({"name": "grill", "auto_bump_after": "10m"})}],
    indirect=True,
)
async def test_accepted_ticket_is_bumped_automatically_and_audited(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # Guarantees: auto_bump_after after acceptance the ticket is processed; the audit log
    # names the actor "auto-bump" and the API shows the reason. Unaccepted tickets stay.
    order = await post(client, order_body("ab-1"))
    other = await post(client, order_body("ab-2"))
    for target in ("delivered", "accepted"):
        await client.post(
            f"/api/v1/orders/{order['id']}/endpoints/grill/status", json={"status": target}
        )
    deadline = await wait_until(lambda: daemon.timers.deadline(order["id"]))
    accepted = (await order_of(client, order["id"]))["items"][0]["endpoints"][0]["statusChanges"]
    assert deadline == datetime.fromisoformat(accepted[-1]["date"]) + timedelta(minutes=10)
    await advance_to(clock, deadline)
    await wait_until(lambda: _is(client, order["id"], 1, "grill", "processed"))
    rows = await daemon.store.fetchall(
        "SELECT actor, reason FROM status_changes WHERE order_id = ? AND status = 'processed'",
        (order["id"],),
    )
    assert [tuple(r) for r in rows] == [("auto-bump", "auto-bump after 10m")]
    assert status(await order_of(client, other["id"]), 1, "grill") == "sent"
    assert status(await order_of(client, order["id"]), 2, "bar") == "sent"


async def _is(client: TestClient, order_id: str, item_id: int, endpoint: str, wanted: str) -> bool:
    return status(await order_of(client, order_id), item_id, endpoint) == wanted


# --------------------------------------------------------------------------- scheduled


@pytest.mark.parametrize(
    "config_data",
    [{"endpoints": endpoints({"name": "grill", "lead_time": "20m"})}],
    indirect=True,
)
async def test_scheduled_order_reaches_each_station_its_lead_time_before_due(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # Guarantees: dueAt is kept; each endpoint's items are held until dueAt - lead_time
    # (grill 20m, bar the default 15m), then released on the clock.
    due = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    order = await post(client, order_body("s-1", dueAt=due.isoformat()))
    assert datetime.fromisoformat(order["dueAt"]) == due
    holds = {h["endpoint"]: h for h in order["holds"]}
    assert {h["reason"] for h in holds.values()} == {"scheduled"}
    assert datetime.fromisoformat(holds["grill"]["releaseAt"]) == due - timedelta(minutes=20)
    assert datetime.fromisoformat(holds["bar"]["releaseAt"]) == due - timedelta(minutes=15)
    assert status(order, 1, "grill") == "created"
    await advance_to(clock, due - timedelta(minutes=20))
    await wait_until(lambda: released(client, order["id"], 1, "grill"))
    assert status(await order_of(client, order["id"]), 2, "bar") == "created"
    await advance_to(clock, due - timedelta(minutes=15))
    await wait_until(lambda: released(client, order["id"], 2, "bar"))


@pytest.mark.parametrize("due_at", ["2026-12-01T18:00:00", "tomorrow", 1767290400])
async def test_a_due_time_without_zone_or_not_a_date_is_422(
    client: TestClient, due_at: Any
) -> None:
    # Guarantees: dueAt must be an ISO 8601 date-time with a zone; nothing is stored otherwise.
    response = await client.post("/api/v1/orders", json=order_body("bad-due", dueAt=due_at))
    assert response.status == 422, await response.text()
    assert "dueAt" in (await response.text())
    assert (await (await client.get("/api/v1/orders")).json())["count"] == 0


async def test_a_due_time_already_inside_the_window_is_not_held(client: TestClient) -> None:
    # Guarantees: an order due within the lead time goes to the stations at once.
    due = utcnow() + timedelta(minutes=5)
    order = await post(client, order_body("s-2", dueAt=due.isoformat()))
    assert order["holds"] == [] and status(order, 1, "grill") == "sent"


# --------------------------------------------------------------------------- config


def test_pacing_config_keys_and_errors(tmp_path: Path) -> None:
    # Guarantees: the config names parse; a prep_times rule without a product match and a
    # bad duration are errors that name the key.
    from kds.config import ConfigError

    settings = settings_from_dict(
        base_config(
            tmp_path,
            endpoints=endpoints(
                {
                    "name": "grill",
                    "hold_courses": True,
                    "fire_delay": "2m",
                    "auto_bump_after": "10m",
                    "lead_time": "15m",
                }
            ),
            prep_times=[{"product_group": "Grill", "time": "12m"}],
        )
    )
    grill = settings.endpoint("grill")
    assert grill is not None
    assert (grill.hold_courses, grill.fire_delay, grill.auto_bump_after, grill.lead_time) == (
        True,
        120,
        600,
        900,
    )
    assert settings.prep_times[0].time == 720
    with pytest.raises(ConfigError, match=r"prep_times\[0\]: a rule needs product_code"):
        settings_from_dict(base_config(tmp_path, prep_times=[{"time": "5m"}]))
    with pytest.raises(ConfigError, match=r"endpoints.grill.fire_delay: .*expected a duration"):
        settings_from_dict(
            base_config(tmp_path, endpoints=endpoints({"name": "grill", "fire_delay": "soon"}))
        )


# --------------------------------------------------------------------------- printing


async def test_held_course_prints_only_when_fired(
    tmp_path: Path, aiohttp_client: Any, printer: Any
) -> None:
    # Guarantees: on paper too a held course waits: the first ticket lists course 1 only, the
    # fire prints a second ticket with course 2 only (decoded from the printer's bytes).
    from .util import FAST_PRINTER

    grill = {**GRILL_HOLDS, "printer": {"address": printer.address, **FAST_PRINTER}}
    settings = settings_from_dict(base_config(tmp_path, endpoints=endpoints(grill)))
    client = await aiohttp_client(Daemon(settings, clock=ManualClock()).app)
    order = await post(client, coursed_order())
    first = (await printer.wait_for_jobs(1))[0]
    assert "COURSE 1" in first.text and "1 x Soup" in first.text
    assert "Steak" not in first.text and "COURSE 2" not in first.text
    await client.post(f"/api/v1/orders/{order['id']}/courses/2/fire")
    second = (await printer.wait_for_jobs(2))[1]
    assert "1 x Steak" in second.text and "COURSE 2" in second.text
    assert "Soup" not in second.text
    await wait_until(lambda: _is(client, order["id"], 2, "grill", "delivered"))


@pytest.mark.parametrize(
    "config_data",
    [
        {
            "endpoints": endpoints({**GRILL_HOLDS, "fire_delay": "0s"}),
            "prep_times": [
                {"product_group": "Grill", "time": "12m"},
                {"name_pattern": "soup", "time": "2m"},
            ],
        }
    ],
    indirect=True,
)
async def test_a_scheduled_order_is_paced_by_course_and_prep_time_once_its_window_opens(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # Guarantees: the stages chain — when the window opens, course 2 stays held and course 1 is
    # released by prep time; bumping course 1 fires course 2 at once (fire_delay 0).
    due = utcnow() + timedelta(hours=1)
    body = order_body(
        "chain",
        dueAt=due.isoformat(),
        items=[
            {"id": 1, "plu": {"name": "Soup"}, "courseNumber": 1},
            {"id": 4, "plu": {"name": "Ribs", "group": "Grill"}, "courseNumber": 1},
            {"id": 2, "plu": {"name": "Steak", "group": "Grill"}, "courseNumber": 2},
        ],
    )
    order = await post(client, body)
    assert {h["reason"] for h in order["holds"]} == {"scheduled"}
    await advance_to(clock, due - timedelta(minutes=15))
    await wait_until(lambda: released(client, order["id"], 4, "grill"))
    after = await order_of(client, order["id"])
    reasons = {h["itemId"]: h["reason"] for h in after["holds"]}
    assert reasons == {1: "prep", 2: "course"}
    soup = next(h for h in after["holds"] if h["itemId"] == 1)
    await advance_to(clock, datetime.fromisoformat(soup["releaseAt"]))
    await wait_until(lambda: released(client, order["id"], 1, "grill"))
    for item_id in (1, 4):
        await bump_item(client, order["id"], item_id, "grill")
    await wait_until(lambda: released(client, order["id"], 2, "grill"))


async def bump_item(client: TestClient, order_id: str, item_id: int, endpoint: str) -> None:
    for target in ("delivered", "accepted", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order_id}/endpoints/{endpoint}/items/{item_id}/status",
            json={"status": target},
        )
        assert response.status == 200, await response.text()


async def test_moving_a_ticket_releases_its_held_items_at_the_other_station(
    client: TestClient,
) -> None:
    # Guarantees: a move takes the held course along, released at the target (the station that
    # takes over a ticket cooks it); no hold is left on the skipped source line.
    order = await post(client, coursed_order())
    response = await client.post(
        f"/api/v1/orders/{order['id']}/endpoints/grill/move", json={"to": "cold"}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["holds"] == []
    assert status(body, 2, "grill") == "processSkipped" and status(body, 2, "cold") == "sent"


async def test_a_prep_wait_is_released_on_time_after_a_restart(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Guarantees: deadlines are recomputed from the stored order: a daemon restarted during a
    # prep-time wait still releases the item when its time comes.
    settings = settings_from_dict(
        base_config(
            tmp_path,
            prep_times=[
                {"product_group": "Grill", "time": "12m"},
                {"name_pattern": "*salad*", "time": "4m"},
            ],
        )
    )
    first = Daemon(settings, clock=ManualClock())
    client = await aiohttp_client(first.app)
    body = order_body(
        "r-1",
        items=[
            {"id": 1, "plu": {"name": "Ribeye", "group": "Grill"}},
            {"id": 2, "plu": {"name": "Caesar salad"}},
        ],
    )
    order = await post(client, body)
    [hold] = order["holds"]
    await client.close()
    clock = ManualClock()
    second = Daemon(settings, clock=clock)
    client = await aiohttp_client(second.app)
    await wait_until(lambda: second.timers.deadline(order["id"]))
    assert second.timers.deadline(order["id"]) == datetime.fromisoformat(hold["releaseAt"])
    await advance_to(clock, datetime.fromisoformat(hold["releaseAt"]))
    await wait_until(lambda: released(client, order["id"], 2, "cold"))
    await client.close()
