"""Kitchen workflow at the API: allergen alerts and their acknowledgement, rush, moving a
ticket between stations (both printers decoded), reports (issue 16)."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import settings_from_dict
from kds.simulators.cooks import CookPace, SimulatedCooks
from kds.simulators.printer import VirtualPrinter

from .util import FAST_PRINTER, base_config, order_body, wait_until

ALLERGENS = {"nuts": ["peanut", "nut", "nuss", "orech"], "gluten": ["gluten", "lepok"]}


@pytest.fixture
def config_data(tmp_path: Path, printers: dict[str, VirtualPrinter]) -> dict[str, Any]:
    # grill and grill2 each have a screen and a printer; bar is a screen.
    printed = {
        name: {"address": printers[vp].address, **FAST_PRINTER}
        for name, vp in (("grill", "grill"), ("grill2", "spare"))
    }
    return base_config(
        tmp_path,
        endpoints=[
            {"name": "grill", "display": True, "printer": printed["grill"]},
            {"name": "grill2", "display": True, "printer": printed["grill2"]},
            {"name": "bar", "display": True},
        ],
        routing={
            "default_endpoint": "grill",
            "rules": [{"product_group": "Drinks", "endpoint": "bar"}],
        },
        allergens=ALLERGENS,
    )


def satay_body(external_id: str = "a-1") -> dict[str, Any]:
    body = order_body(external_id)
    body["items"][0]["plu"]["name"] = "Satay"
    body["items"][0]["modifiers"] = ["Erdnuß sauce"]
    body["items"][0]["comment"] = None
    return body


async def post(client: TestClient, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    resp = await client.post(path, json=body) if body is not None else await client.post(path)
    return resp.status, await resp.json()


async def ingest(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    status, order = await post(client, "/api/v1/orders", body)
    assert status == 201, order
    return order


# --------------------------------------------------------------------------- allergens


async def test_items_carry_their_allergens(client: TestClient) -> None:
    # Guarantees: an allergen named in a modifier (any spelling) or flagged by the POS is in the
    # item's JSON; an item without one carries an empty list.
    body = satay_body()
    body["items"][1]["allergens"] = ["Gluten", "sulphites"]
    order = await ingest(client, body)
    satay, beer = order["items"]
    assert satay["allergens"] == ["nuts"]
    assert beer["allergens"] == ["gluten", "sulphites"]
    again = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert again["items"][0]["allergens"] == ["nuts"]


async def test_accept_needs_the_allergen_acknowledged(client: TestClient, daemon: Daemon) -> None:
    # Guarantees: a ticket with an allergen cannot be accepted (or bumped past accepted) at a
    # station before its cook acknowledged it: 409 naming the allergen; after the ack it can.
    order = await ingest(client, satay_body())
    base = f"/api/v1/orders/{order['id']}/endpoints/grill"
    await wait_until(lambda: daemon.service.get(order["id"]).status_at("grill").value == "sent")
    await post(client, f"{base}/status", {"status": "delivered"})
    await post(
        client, f"/api/v1/orders/{order['id']}/endpoints/bar/status", {"status": "delivered"}
    )
    for target in ("accepted", "processed"):
        status, problem = await post(client, f"{base}/status", {"status": target})
        assert status == 409, problem
        assert "nuts" in problem["detail"] and "allergens/ack" in problem["detail"]
    status, problem = await post(
        client, f"/api/v1/orders/{order['id']}/status", {"status": "accepted"}
    )
    assert status == 409 and "grill" in problem["detail"]
    assert daemon.service.get(order["id"]).status_at("grill").value == "delivered"
    # The bar has no allergen: its cook is not held up.
    status, bar = await post(
        client, f"/api/v1/orders/{order['id']}/endpoints/bar/status", {"status": "accepted"}
    )
    assert status == 200, bar

    status, acked = await post(client, f"{base}/allergens/ack")
    assert status == 200, acked
    assert set(acked["allergenAcks"]) == {"grill"}
    assert acked["events"][-1]["type"] == "allergensAcknowledged"
    assert acked["events"][-1]["endpoint"] == "grill"
    status, accepted = await post(client, f"{base}/status", {"status": "accepted"})
    assert status == 200, accepted
    assert accepted["endpointStatuses"]["grill"] == "accepted"


async def test_allergen_ack_errors(client: TestClient) -> None:
    # Guarantees: acknowledging at a station the order is not at, or for an unknown order, is a 404.
    order = await ingest(client, satay_body())
    status, _ = await post(client, f"/api/v1/orders/{order['id']}/endpoints/grill2/allergens/ack")
    assert status == 404
    status, _ = await post(client, "/api/v1/orders/nope/endpoints/grill/allergens/ack")
    assert status == 404


async def test_allergen_ack_is_on_the_live_feed(client: TestClient) -> None:
    # Guarantees: the station's screens learn of the acknowledgement at once.
    order = await ingest(client, satay_body())
    async with client.session.ws_connect(f"{client.make_url('/api/v1/ws')}?endpoint=grill") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        await post(client, f"/api/v1/orders/{order['id']}/endpoints/grill/allergens/ack")

        async def updated() -> dict[str, Any]:
            while True:
                message = await ws.receive_json(timeout=5)
                if message["type"] == "order.updated" and message["order"]["allergenAcks"]:
                    return message

        message = await asyncio.wait_for(updated(), 5)
    assert list(message["order"]["allergenAcks"]) == ["grill"]


async def test_allergen_ticket_prints_boxed_and_inverted(
    client: TestClient, printers: dict[str, VirtualPrinter]
) -> None:
    await ingest(client, satay_body())
    job = (await printers["grill"].wait_for_jobs(1))[0]
    header = next(i for i, line in enumerate(job.lines) if "ALLERGY: NUTS" in line.text)
    assert job.lines[header].invert and job.lines[header].text.startswith("|")
    assert set(job.lines[header - 1].text) <= {"+", "-"}


# --------------------------------------------------------------------------- rush


async def test_rush_marks_the_order_and_prints_a_slip(
    client: TestClient, printers: dict[str, VirtualPrinter]
) -> None:
    # Guarantees: rush sets `rush`, is audited, and the grill — whose ticket is on paper
    # already — gets a short RUSH slip; a second rush changes nothing.
    order = await ingest(client, order_body("r-1"))
    await printers["grill"].wait_for_jobs(1)
    status, rushed = await post(client, f"/api/v1/orders/{order['id']}/rush")
    assert status == 200, rushed
    assert rushed["rush"] is True
    assert [e["type"] for e in rushed["events"]] == ["rush"]
    assert rushed["version"] == order["version"] + 1
    slip = (await printers["grill"].wait_for_jobs(2))[1]
    assert slip.lines[0].text.strip() == "RUSH" and slip.lines[0].invert
    assert not any("Cheeseburger" in line.text for line in slip.lines)
    status, again = await post(client, f"/api/v1/orders/{order['id']}/rush")
    assert status == 200 and again["version"] == rushed["version"]


async def test_rush_before_printing_puts_rush_on_the_ticket(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # Guarantees: a ticket printed after the rush carries the RUSH banner, and no extra slip.
    await printers["grill"].set_mode("offline")
    order = await ingest(client, order_body("r-2"))
    status, _ = await post(client, f"/api/v1/orders/{order['id']}/rush")
    assert status == 200
    await printers["grill"].set_mode("online")
    await client.post("/api/v1/printers/grill/retry")
    job = (await printers["grill"].wait_for_jobs(1, timeout=10))[0]
    assert job.lines[0].text.strip() == "RUSH"
    assert any("Cheeseburger" in line.text for line in job.lines)
    await wait_until(
        lambda: daemon.service.get(order["id"]).status_at("grill").value == "delivered"
    )
    assert len(printers["grill"].jobs) == 1


async def test_rush_errors(client: TestClient) -> None:
    status, problem = await post(client, "/api/v1/orders/nope/rush")
    assert status == 404 and problem["error"]
    order = await ingest(client, order_body("r-3"))
    await post(client, f"/api/v1/orders/{order['id']}/status", {"status": "processSkipped"})
    status, problem = await post(client, f"/api/v1/orders/{order['id']}/rush")
    assert status == 409 and "finished" in problem["detail"]


# --------------------------------------------------------------------------- move


async def test_move_sends_open_items_to_the_other_station_with_transfer_marks(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # Guarantees: the grill's open items go to grill2, which shows and prints them; both
    # printers print TRANSFER (decoded); the bar's item stays where it was.
    order = await ingest(client, order_body("m-1"))
    await printers["grill"].wait_for_jobs(1)
    await wait_until(
        lambda: daemon.service.get(order["id"]).status_at("grill").value == "delivered"
    )
    status, moved = await post(
        client, f"/api/v1/orders/{order['id']}/endpoints/grill/move", {"to": "grill2"}
    )
    assert status == 200, moved
    burger = moved["items"][0]
    at = {e["name"]: e for e in burger["endpoints"]}
    assert at["grill"]["status"] == "processSkipped"
    assert at["grill"]["statusChanges"][-1]["reason"] == "moved to grill2"
    assert at["grill2"]["status"] in ("created", "sent")
    assert [e["name"] for e in moved["items"][1]["endpoints"]] == ["bar"]
    assert moved["events"][-1] | {"date": None} == {
        "type": "moved",
        "endpoint": "grill",
        "to": "grill2",
        "actor": moved["events"][-1]["actor"],
        "date": None,
    }
    away = (await printers["grill"].wait_for_jobs(2))[1]
    assert away.lines[0].text.strip() == "TRANSFER"
    assert any("MOVED TO GRILL2" in line.text for line in away.lines)
    assert any("Cheeseburger" in line.text for line in away.lines)
    here = (await printers["spare"].wait_for_jobs(1))[0]
    assert here.lines[0].text.strip() == "TRANSFER"
    assert any("MOVED FROM GRILL" in line.text for line in here.lines)
    assert any("Cheeseburger" in line.text for line in here.lines)
    await wait_until(
        lambda: daemon.service.get(order["id"]).status_at("grill2").value == "delivered"
    )


async def test_move_errors(client: TestClient) -> None:
    # Guarantees: unknown or same station, a malformed body, a closed ticket: clear 4xx, nothing moved.
    order = await ingest(client, order_body("m-2"))
    base = f"/api/v1/orders/{order['id']}/endpoints"
    for body, expected in (
        ({"to": "nowhere"}, 404),
        ({"to": "grill"}, 409),
        ({"to": ""}, 422),
        ({}, 422),
        ({"to": "grill2", "extra": 1}, 422),
    ):
        status, problem = await post(client, f"{base}/grill/move", body)
        assert status == expected, (body, problem)
        assert problem["detail"]
    status, _ = await post(client, f"{base}/grill2/move", {"to": "grill"})
    assert status == 404  # nothing of this order at grill2
    await post(client, f"{base}/grill/status", {"status": "processSkipped"})
    status, problem = await post(client, f"{base}/grill/move", {"to": "grill2"})
    assert status == 409 and "open" in problem["detail"]
    current = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert "grill2" not in current["endpointStatuses"]


# --------------------------------------------------------------------------- reports


async def test_reports_count_live_and_archived_orders(client: TestClient, daemon: Daemon) -> None:
    # Guarantees: a bumped order counts (before and after it is archived), JSON and CSV agree,
    # and a refusal is counted.
    first = await ingest(client, order_body("rep-1"))
    second = await ingest(client, order_body("rep-2"))
    await post(client, f"/api/v1/orders/{first['id']}/status", {"status": "delivered"})
    await post(client, f"/api/v1/orders/{first['id']}/status", {"status": "processed"})
    await post(
        client, f"/api/v1/orders/{second['id']}/endpoints/bar/status", {"status": "delivered"}
    )
    await post(client, f"/api/v1/orders/{second['id']}/endpoints/bar/status", {"status": "refused"})
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    async def report(**extra: str) -> Any:
        resp = await client.get("/api/v1/reports", params={"from": start, "to": end, **extra})
        assert resp.status == 200, await resp.text()
        return await resp.json() if "format" not in extra else await resp.text()

    live = await report()
    by_station = {s["endpoint"]: s for s in live["stations"]}
    assert (by_station["grill"]["tickets"], by_station["grill"]["bumped"]) == (2, 1)
    assert (by_station["bar"]["tickets"], by_station["bar"]["refusals"]) == (2, 1)
    assert live["products"][0]["product"] in ("Cheeseburger", "Pilsner")

    archived = await daemon.service.archive_finished(datetime.now(UTC) + timedelta(days=2))
    assert archived == 1
    assert daemon.service.get(first["id"]) is None
    assert await report() == live
    rows = list(csv.DictReader(io.StringIO(await report(format="csv"))))
    grill = next(r for r in rows if r["section"] == "station" and r["endpoint"] == "grill")
    assert grill["tickets"] == "2"
    only_bar = await report(endpoint="bar")
    assert [s["endpoint"] for s in only_bar["stations"]] == ["bar"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"from": "yesterday"}, 400),
        ({"format": "xml"}, 400),
        ({"endpoint": "nowhere"}, 404),
        ({"to": ""}, 400),  # an empty value is not "now": leave the parameter out for the default
        ({"from": ""}, 400),
    ],
)
async def test_report_bad_input_is_a_4xx(
    client: TestClient, params: dict[str, str], expected: int
) -> None:
    resp = await client.get("/api/v1/reports", params=params)
    assert resp.status == expected
    assert (await resp.json())["detail"]


async def test_an_empty_range_is_an_empty_report(client: TestClient) -> None:
    await ingest(client, order_body("empty-1"))
    resp = await client.get(
        "/api/v1/reports", params={"from": "2030-01-02", "to": "2030-01-01t00:00:00z"}
    )
    assert resp.status == 200
    assert (await resp.json())["total"]["tickets"] == 0


async def test_reports_page_is_served(client: TestClient) -> None:
    resp = await client.get("/reports", headers={"Accept": "text/html"})
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_workflow_state_survives_a_restart(
    aiohttp_client: Any, config_data: dict[str, Any], printers: dict[str, VirtualPrinter]
) -> None:
    # Guarantees: allergens, acknowledgements, rush, a move and the audit events are stored,
    # and after a restart the order reads back byte for byte.
    first = Daemon(settings_from_dict(config_data))
    client = await aiohttp_client(first.app)
    order = await ingest(client, satay_body("keep-1"))
    base = f"/api/v1/orders/{order['id']}"
    await post(client, f"{base}/endpoints/grill/allergens/ack")
    await post(client, f"{base}/rush")
    status, moved = await post(client, f"{base}/endpoints/grill/move", {"to": "grill2"})
    assert status == 200, moved
    # Every ticket printed (new, RUSH slip, TRANSFER; new at grill2): nothing changes meanwhile.
    await printers["grill"].wait_for_jobs(3)
    await printers["spare"].wait_for_jobs(1)
    await wait_until(
        lambda: first.service.get(order["id"]).status_at("grill2").value == "delivered"
    )
    before = await (await client.get(base)).text()
    await client.close()

    second = Daemon(settings_from_dict(config_data))
    client = await aiohttp_client(second.app)
    after = await (await client.get(base)).text()
    assert after == before
    restored = await (await client.get(base)).json()
    assert restored["rush"] and list(restored["allergenAcks"]) == ["grill"]
    assert [e["type"] for e in restored["events"]] == ["allergensAcknowledged", "rush", "moved"]
    assert restored["items"][0]["allergens"] == ["nuts"]
    await client.close()


async def test_demo_cooks_acknowledge_allergens_before_accepting(
    client: TestClient, daemon: Daemon
) -> None:
    # Guarantees: the demo's simulated cooks note an allergen (audited) before they accept the
    # ticket, so allergen tickets flow in `kds demo` too.
    clock = ManualClock()
    pace = CookPace(accept_after=10, cook_base=60, cook_per_item=20)
    cooks = SimulatedCooks(
        str(client.make_url("")), ["grill", "bar"], pace, rng=random.Random(3), sleep=clock.sleep
    )
    await cooks.start()
    try:
        order = await ingest(client, satay_body("cook-1"))
        await clock.waiting(2, timeout=10)
        await clock.advance(pace.accept_after * 1.5)
        await clock.waiting(2, timeout=10)
        current = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
        assert current["endpointStatuses"] == {"grill": "accepted", "bar": "accepted"}
        assert list(current["allergenAcks"]) == ["grill"]
        assert current["events"][0]["type"] == "allergensAcknowledged"
    finally:
        await cooks.stop()
