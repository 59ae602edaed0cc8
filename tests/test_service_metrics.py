"""The core's counters on /metrics: what they count, across scrapes (kds.service.metrics).

The counters are kept as plain integers on the ingest path and handed to prometheus
when /metrics is scraped; these tests read the real /metrics text of a real server.
"""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from .util import order_body


def _sample(metrics: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", metrics, re.M)
    return None if match is None else float(match.group(1))


async def test_ingests_repeats_and_changes_are_counted_across_scrapes(client: TestClient) -> None:
    first = await (await client.get("/metrics")).text()
    # Nothing counted yet: the families are there, without samples.
    assert "# TYPE kds_orders_ingested_total counter" in first
    assert _sample(first, "kds_orders_ingested_total", 'source="native"') is None
    body = order_body("metrics-1")
    assert (await client.post("/api/v1/orders", json=body)).status == 201
    assert (await client.post("/api/v1/orders", json=body)).status == 200  # a repeat
    second = await (await client.get("/metrics")).text()
    assert _sample(second, "kds_orders_ingested_total", 'source="native"') == 1.0
    assert _sample(second, "kds_orders_repeated_total", 'source="native"') == 1.0
    created = _sample(second, "kds_orders_ingested_created", 'source="native"')
    assert created is not None and created > 1.5e9
    # The order's two item endpoints went to their screens at once (created → sent).
    assert _sample(second, "kds_status_changes_total", 'status="sent"') == 2.0
    # Counted again after a scrape: added to what was there, not instead of it.
    order = await (await client.post("/api/v1/orders", json=order_body("metrics-2"))).json()
    assert (await client.post("/api/v1/orders", json=order_body("metrics-3"))).status == 201
    changed = await client.post(f"/api/v1/orders/{order['id']}/status", json={"status": "accepted"})
    assert changed.status == 200, await changed.text()
    third = await (await client.get("/metrics")).text()
    assert _sample(third, "kds_orders_ingested_total", 'source="native"') == 3.0
    assert _sample(third, "kds_orders_repeated_total", 'source="native"') == 1.0
    assert _sample(third, "kds_orders_ingested_created", 'source="native"') == created
    assert _sample(third, "kds_status_changes_total", 'status="sent"') == 6.0
    started = _sample(third, "kds_status_changes_total", 'status="accepted"')
    assert started == 2.0
    # A scrape reads; it does not count again.
    fourth = await (await client.get("/metrics")).text()
    assert _sample(fourth, "kds_orders_ingested_total", 'source="native"') == 3.0
