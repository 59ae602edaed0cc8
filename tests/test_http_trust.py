"""Trust holes of the HTTP surface (issue 13): 500s from odd input, numbers, metrics, rate limits.

Each test names the hole it closes. The daemon runs in-process on a real server
on 127.0.0.1 (pytest-aiohttp); nothing of kds is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.config import settings_from_dict

from .util import base_config, order_body


async def daemon_client(aiohttp_client: Any, config: dict[str, Any]) -> TestClient:
    """A client of a daemon built from `config`."""
    return await aiohttp_client(Daemon(settings_from_dict(config)).app)


# ----------------------------------------------------------------------------- item 8: 500s


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/static/js/main.js%00.css"),
        ("GET", "/static/%00"),
        ("GET", "/static/js/%0a.js"),
        ("GET", "/screen/%00"),
    ],
)
async def test_odd_bytes_in_paths_are_404_not_500(client: TestClient, method: str, path: str) -> None:
    # A NUL in a static file path raised ValueError inside pathlib: a 500 with a logged traceback.
    response = await client.request(method, path)
    assert response.status == 404, await response.text()


@pytest.mark.parametrize("digits", ["%C2%B2", "%D9%A3", "%EF%BC%91", "1_0", "%201", "+1", "-1", "1%00"])
async def test_unicode_digits_in_path_and_query_integers_are_400(client: TestClient, digits: str) -> None:
    # "²".isdigit() is True but int("²") fails: item ids and `since` went through isdigit() and 500ed.
    # Arabic-Indic and full-width digits, underscores, signs and spaces are no integers on our wire either.
    order = await (await client.post("/api/v1/orders", json=order_body("digits"))).json()
    for path in (
        f"/api/v1/orders/{order['id']}/items/{digits}/status",
        f"/api/v1/orders/{order['id']}/endpoints/grill/items/{digits}/status",
    ):
        response = await client.post(path, json={"status": "delivered"})
        assert response.status == 400, (path, response.status, await response.text())
        assert "itemId" in (await response.json())["detail"]
    if digits not in ("%201", "+1"):  # "+" is a space in a query; spaces around filter values are fine
        response = await client.get(f"/api/v1/orders?number={digits}")
        assert response.status == 400, await response.text()
    response = await client.get(f"/api/v1/orders?$take={digits}")
    assert response.status == 400, await response.text()
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(f"ws://127.0.0.1:{client.port}/api/v1/ws?since={digits}"):
            pass
    assert err.value.response.status_code == 400
    after = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert after == order


def test_the_one_integer_parser_takes_ascii_digits_only() -> None:
    # One helper parses every integer from a path or query: ASCII digits, an optional minus, bounded.
    from kds.api.query import parse_int
    from kds.errors import BadRequest

    assert parse_int("n", "42") == 42 and parse_int("n", "0") == 0
    assert parse_int("n", "-3", low=-5) == -3
    for bad in ("²", "٣", "１", "1_000", " 1", "1 ", "+1", "", "0x10", "1e3", "1.0", "1\x00", "-"):
        with pytest.raises(BadRequest):
            parse_int("n", bad)
    with pytest.raises(BadRequest):
        parse_int("n", "11", high=10)
    with pytest.raises(BadRequest):
        parse_int("n", "9" * 40)


# ----------------------------------------------------------------------------- item 9: numbers


@pytest.mark.parametrize(
    "where",
    [
        lambda n: {"ticket": {"customer": {"name": "Eva", "balance": n}}},
        lambda n: {"user": {"userName": "anna", "score": n}},
        lambda n: {"ticket": {"customer": {"history": [[n]]}}},
        lambda n: {"extra": n},  # an unknown field: ignored, but the number is still no number
    ],
)
@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_anywhere_are_422(client: TestClient, daemon: Daemon, where: Any, number: str) -> None:
    # 1e400 inside a free-form object became inf, was stored as null and answered 201.
    marker = 1234567.25
    body = json.dumps(order_body("nonfinite", **where(marker))).replace(repr(marker), number)
    assert number in body
    response = await client.post("/api/v1/orders", data=body, headers={"Content-Type": "application/json"})
    answer = await response.json()
    assert response.status == 422, answer
    assert "finite" in answer["detail"], answer
    listing = await (await client.get("/api/v1/orders")).json()
    assert listing["totalCount"] == 0


async def test_large_finite_numbers_in_free_objects_are_kept(client: TestClient) -> None:
    # The check is on finiteness, not size: 1e300 is a number and is kept as sent.
    response = await client.post("/api/v1/orders", json=order_body("big", ticket={"customer": {"points": 1e300}}))
    assert response.status == 201
    assert (await response.json())["ticket"]["customer"] == {"points": 1e300}


# ----------------------------------------------------------------------------- item 11: metrics


async def test_client_chosen_sources_do_not_grow_the_metrics(client: TestClient) -> None:
    # kds_orders_ingested_total{source} took any client-supplied source: 500 sources, 1,000 new series.
    # Configured sources keep their own label; every other name is counted as "other".
    before = (await (await client.get("/metrics")).text()).count("\n")
    for i in range(500):
        body = order_body(f"m{i}", source=f"pos-{i}")
        assert (await client.post("/api/v1/orders", json=body)).status == 201
        assert (await client.post("/api/v1/orders", json=body)).status == 200  # a repeat
    assert (await client.post("/api/v1/orders", json=order_body("native-1"))).status == 201
    metrics = await (await client.get("/metrics")).text()
    assert metrics.count("\n") - before <= 24, metrics  # a constant: "other" and "native" series, not 1,000
    assert 'kds_orders_ingested_total{source="other"} 500.0' in metrics
    assert 'kds_orders_repeated_total{source="other"} 500.0' in metrics
    assert 'kds_orders_ingested_total{source="native"} 1.0' in metrics
    assert "pos-1" not in metrics


# ----------------------------------------------------------------------------- item 12: 429


async def test_rate_limited_ingest_says_when_to_retry(tmp_path: Path, aiohttp_client: Any) -> None:
    # The 429 of the ingest rate limit had no Retry-After: clients could only guess.
    config = base_config(tmp_path, security={"ingest_rate": 0.5, "ingest_burst": 2})
    client = await daemon_client(aiohttp_client, config)
    statuses = []
    for i in range(3):
        response = await client.post("/api/v1/orders", json=order_body(f"rl{i}"))
        statuses.append(response.status)
    assert statuses == [201, 201, 429]
    assert response.headers["Retry-After"] == "2"  # one token at 0.5/s: two seconds, rounded up
    assert (await response.json())["error"] == "rate_limited"


def test_token_bucket_wait_is_the_time_until_a_token() -> None:
    from kds.api.auth import TokenBucket

    now = [100.0]
    bucket = TokenBucket(rate=4, burst=1, clock=lambda: now[0])
    assert bucket.take("a") == 0
    assert bucket.take("a") == pytest.approx(0.25)
    now[0] += 0.1
    assert bucket.take("a") == pytest.approx(0.15)
    now[0] += 0.15
    assert bucket.take("a") == 0
