"""Two kds nodes on one PostgreSQL database share a site's printers: one lock per printer.

Each node is a whole daemon on its own 127.0.0.1 port; they share nothing but
the database of a real PostgreSQL server (tests/pg.py) and print on virtual
printers that decode the bytes they receive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.cluster.printers import printer_groups
from kds.config import settings_from_dict
from kds.simulators.printer import VirtualPrinter

from .util import FAST_PRINTER, base_config, order_body, wait_until


def printer(address: str) -> dict[str, Any]:
    return {"address": address, **FAST_PRINTER}


def node(tmp_path: Path, pg_url: str, name: str, endpoints: list[dict[str, Any]]) -> Daemon:
    config = base_config(
        tmp_path / name, database={"url": pg_url}, node={"name": name}, endpoints=endpoints
    )
    return Daemon(settings_from_dict(config))


async def holders(client: TestClient) -> dict[str, str | None]:
    body = await (await client.get("/api/v1/printers")).json()
    return {p["endpoint"]: p["heldBy"] for p in body["items"]}


async def test_two_nodes_drive_different_printers_of_one_site(
    tmp_path: Path, pg_url: str, aiohttp_client: Any, printers: dict[str, VirtualPrinter]
) -> None:
    # B (the bar's box, with only the bar printer configured) starts first and drives the bar
    # printer; A drives the grill printer. One order posted to A prints on both, each ticket
    # from the node holding its printer; /api/v1/printers and /readyz say who holds which.
    # When B stops, A takes the bar printer over.
    grill, bar = printers["grill"], printers["bar"]
    b_daemon = node(
        tmp_path,
        pg_url,
        "b",
        [
            {"name": "grill", "display": True},
            {"name": "cold", "display": True},
            {"name": "bar", "printer": printer(bar.address)},
        ],
    )
    b: TestClient = await aiohttp_client(b_daemon.app)
    a_daemon = node(
        tmp_path,
        pg_url,
        "a",
        [
            {"name": "grill", "display": True, "printer": printer(grill.address)},
            {"name": "cold", "display": True},
            {"name": "bar", "printer": printer(bar.address)},
        ],
    )
    a: TestClient = await aiohttp_client(a_daemon.app)
    assert a_daemon.cluster is not None and b_daemon.cluster is not None
    assert a_daemon.cluster.locks.holds("printer:grill")
    assert not a_daemon.cluster.locks.holds("printer:bar")
    assert b_daemon.cluster.locks.holds("printer:bar")
    assert await holders(a) == {"grill": "a", "bar": "b"}
    readyz = await (await a.get("/readyz")).json()
    locks = readyz["components"]["locks"]["holders"]
    assert (locks["printer:grill"], locks["printer:bar"]) == ("a", "b")

    response = await a.post("/api/v1/orders", json=order_body("shared-1"))
    assert response.status == 201, await response.text()
    [grill_ticket] = await grill.wait_for_jobs(1)
    [bar_ticket] = await bar.wait_for_jobs(1)
    assert "Cheeseburger" in grill_ticket.text and "Pilsner" in bar_ticket.text
    assert "REPRINT" not in grill_ticket.text + bar_ticket.text

    await b.close()  # B's locks go with its connection
    await wait_until(lambda: a_daemon.cluster.locks.holds("printer:bar"), timeout=10)
    assert await holders(a) == {"grill": "a", "bar": "a"}
    response = await a.post("/api/v1/orders", json=order_body("shared-2"))
    assert response.status == 201, await response.text()
    await bar.wait_for_jobs(2)
    await grill.wait_for_jobs(2)


def test_printers_sharing_a_device_share_one_lock() -> None:
    # A printer that falls back to another endpoint's printer (or to the same address) is
    # driven by the same node as that printer: two nodes never write to one device at once.
    endpoints = settings_from_dict(
        base_config(
            Path("/nonexistent"),
            endpoints=[
                {"name": "grill", "printer": {"address": "10.0.0.1:9100", "fallback": "cold"}},
                {"name": "cold", "printer": {"address": "10.0.0.2:9100"}},
                {"name": "bar", "printer": {"address": "10.0.0.3:9100"}},
                {
                    "name": "pizza",
                    "printer": {"address": "10.0.0.4:9100", "fallback": "10.0.0.3:9100"},
                },
                {"name": "dessert", "display": True},
            ],
            routing={"default_endpoint": "grill"},
        )
    ).endpoints
    assert printer_groups(endpoints) == [["grill", "cold"], ["bar", "pizza"]]
