"""Trust holes of the HTTP surface (issue 13): 500s from odd input, numbers, metrics, rate limits.

Each test names the hole it closes. The daemon runs in-process on a real server
on 127.0.0.1 (pytest-aiohttp); nothing of kds is mocked.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient
from yarl import URL

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
async def test_odd_bytes_in_paths_are_404_not_500(
    client: TestClient, method: str, path: str
) -> None:
    # A NUL in a static file path raised ValueError inside pathlib: a 500 with a logged traceback.
    response = await client.request(method, path)
    assert response.status == 404, await response.text()


@pytest.mark.parametrize(
    "digits", ["%C2%B2", "%D9%A3", "%EF%BC%91", "1_0", "%201", "+1", "-1", "1%00"]
)
async def test_unicode_digits_in_path_and_query_integers_are_400(
    client: TestClient, digits: str
) -> None:
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
    if digits not in (
        "%201",
        "+1",
    ):  # "+" is a space in a query; spaces around filter values are fine
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
async def test_non_finite_numbers_anywhere_are_422(
    client: TestClient, daemon: Daemon, where: Any, number: str
) -> None:
    # 1e400 inside a free-form object became inf, was stored as null and answered 201.
    marker = 1234567.25
    body = json.dumps(order_body("nonfinite", **where(marker))).replace(repr(marker), number)
    assert number in body
    response = await client.post(
        "/api/v1/orders", data=body, headers={"Content-Type": "application/json"}
    )
    answer = await response.json()
    assert response.status == 422, answer
    assert "finite" in answer["detail"], answer
    listing = await (await client.get("/api/v1/orders")).json()
    assert listing["totalCount"] == 0


async def test_large_finite_numbers_in_free_objects_are_kept(client: TestClient) -> None:
    # The check is on finiteness, not size: 1e300 is a number and is kept as sent.
    response = await client.post(
        "/api/v1/orders", json=order_body("big", ticket={"customer": {"points": 1e300}})
    )
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
    assert metrics.count("\n") - before <= 24, (
        metrics
    )  # a constant: "other" and "native" series, not 1,000
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


# ----------------------------------------------------------------------------- item 5: browser-origin requests


async def test_loopback_trust_needs_a_name_kds_serves(tmp_path: Path, aiohttp_client: Any) -> None:
    # DNS rebinding: evil.example resolving to 127.0.0.1 made a page in a browser on the kds box
    # an admin of the default "loopback" mode — it read /board and listed and deleted orders.
    client = await daemon_client(
        aiohttp_client,
        base_config(tmp_path, server={"listen": "127.0.0.1:0", "allowed_hosts": ["kds.lan"]}),
    )
    order = await (await client.post("/api/v1/orders", json=order_body("rebind"))).json()
    port = client.port
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"127.0.0.1.nip.io:{port}",
        "kds.lan.evil.example",
    ):
        for method, path in (
            ("GET", "/api/v1/orders"),
            ("GET", "/board"),
            ("GET", f"/api/v1/orders/{order['id']}"),
            ("DELETE", f"/api/v1/orders/{order['id']}"),
            ("GET", "/metrics"),
            ("GET", "/api/v1/ws"),
        ):
            response = await client.request(method, path, headers={"Host": host})
            assert response.status == 403, (host, method, path, response.status)
            assert "allowed_hosts" in (await response.json())["detail"]
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"[::1]:{port}",
        "kds.lan",
        f"KDS.LAN.:{port}",
        "screen.localhost",
    ):
        response = await client.get("/api/v1/orders", headers={"Host": host})
        assert response.status == 200, (host, await response.text())
    assert (
        await client.get("/healthz", headers={"Host": "evil.example"})
    ).status == 200  # liveness stays public
    assert (await (await client.get(f"/api/v1/orders/{order['id']}")).json()) == order


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_api_bodies_must_be_json(
    client: TestClient, daemon: Daemon, content_type: str | None
) -> None:
    # A no-cors fetch may send text/plain without a preflight: it stored an order (201). Now 415.
    order = await (await client.post("/api/v1/orders", json=order_body("typed"))).json()
    headers = {"Content-Type": content_type} if content_type else {}
    requests = [
        ("/api/v1/orders", json.dumps(order_body("plain")).encode()),
        (f"/api/v1/orders/{order['id']}/status", b'{"status": "processed"}'),
        (f"/api/v1/orders/{order['id']}/endpoints/grill/status", b'{"status": "processed"}'),
    ]
    for path, body in requests:
        response = await client.post(
            path, data=body, headers=headers, skip_auto_headers=["Content-Type"]
        )
        assert response.status == 415, (path, response.status, await response.text())
        assert (await response.json())["error"] == "unsupported_media_type"
    assert (await (await client.get(f"/api/v1/orders/{order['id']}")).json()) == order
    assert (await (await client.get("/api/v1/orders")).json())["totalCount"] == 1


async def test_changes_from_a_foreign_origin_are_refused(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Browsers send Origin with every POST and DELETE: one that is not this kds (or an allowed
    # origin) is a page elsewhere using this browser's access, and changes nothing.
    config = base_config(tmp_path, security={"allowed_origins": ["https://pos.example"]})
    client = await daemon_client(aiohttp_client, config)
    order = await (await client.post("/api/v1/orders", json=order_body("origin"))).json()
    own = f"http://127.0.0.1:{client.port}"
    for origin in (
        "http://evil.example",
        "null",
        f"http://localhost:{client.port}",
        own + ".evil.example",
    ):
        headers = {"Origin": origin}
        assert (
            await client.post("/api/v1/orders", json=order_body("x"), headers=headers)
        ).status == 403
        assert (await client.delete(f"/api/v1/orders/{order['id']}", headers=headers)).status == 403
        response = await client.post(
            f"/api/v1/orders/{order['id']}/status", json={"status": "processed"}, headers=headers
        )
        assert response.status == 403 and "origin" in (await response.json())["detail"]
    assert (await (await client.get(f"/api/v1/orders/{order['id']}")).json()) == order
    assert (
        await client.post("/api/v1/orders", json=order_body("own"), headers={"Origin": own})
    ).status == 201
    assert (
        await client.post(
            "/api/v1/orders", json=order_body("pos"), headers={"Origin": "https://pos.example"}
        )
    ).status == 201
    assert (
        await client.get("/api/v1/orders", headers={"Origin": "http://evil.example"})
    ).status == 200  # reads: CORS guards them


# ----------------------------------------------------------------------------- item 6: pairing

PAIR_TOKENS = {"kitchen": "kitchen-pairing-token-1234", "viewer": "viewer-pairing-token-5678"}


@pytest.fixture
async def paired_client(tmp_path: Path, aiohttp_client: Any) -> TestClient:
    from kds.api.auth import hash_token

    tokens = [
        {"name": f"{r}-screen", "role": r, "sha256": hash_token(t)} for r, t in PAIR_TOKENS.items()
    ]
    return await daemon_client(
        aiohttp_client, base_config(tmp_path, security={"access": "tokens", "tokens": tokens})
    )


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example/",
        "/%09/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "%5C%5Cevil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/%0D%0ASet-Cookie:x=1",
        "%20/screen/grill",
        "screen/grill",
        "/%5C/evil.example",
        "/%20/x",
        "/%00",
    ],
)
async def test_pair_next_is_a_path_on_this_server(paired_client: TestClient, target: str) -> None:
    # /pair was an open redirect: next=/%09/host/ answered Location: //host/ (browsers drop the tab).
    url = URL(f"/pair?token={PAIR_TOKENS['kitchen']}&next={target}", encoded=True)
    response = await paired_client.get(url, allow_redirects=False)
    assert response.status == 400, (target, response.status, response.headers.get("Location"))
    assert "Set-Cookie" not in response.headers


async def test_pairing_sets_the_cookies_and_redirects_within_the_site(
    paired_client: TestClient,
) -> None:
    response = await paired_client.get(
        "/pair",
        params={"token": PAIR_TOKENS["kitchen"], "next": "/screen/grill?x=1"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/screen/grill?x=1"
    cookies = response.headers.getall("Set-Cookie")
    assert any(
        c.startswith("kds_token=") and "SameSite=Strict" in c and "HttpOnly" in c for c in cookies
    )
    assert any(c.startswith("kds_paired=1") and "SameSite=Lax" in c for c in cookies)


async def test_a_link_cannot_re_pair_a_screen_without_the_pages_own_confirmation(
    paired_client: TestClient,
) -> None:
    # One click on a cross-site link re-paired a kitchen screen with a viewer token. Now a paired
    # browser gets a page asking to confirm; only that page's own POST replaces the pairing.
    client = paired_client
    kitchen, viewer = PAIR_TOKENS["kitchen"], PAIR_TOKENS["viewer"]
    assert (
        await client.get(
            "/pair", params={"token": kitchen, "next": "/screen/grill"}, allow_redirects=False
        )
    ).status == 303

    def current() -> str:
        return next(c.value for c in client.session.cookie_jar if c.key == "kds_token")

    # The same token again: nothing to confirm.
    assert (
        await client.get("/pair", params={"token": kitchen}, allow_redirects=False)
    ).status == 303
    page = await client.get(
        "/pair", params={"token": viewer, "next": "/pickup"}, allow_redirects=False
    )
    assert page.status == 200 and page.content_type == "text/html"
    text = await page.text()
    assert "already paired" in text and "viewer-screen" in text and current() == kitchen
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    nonce = text.split('name="confirm" value="')[1].split('"')[0]
    own = f"http://127.0.0.1:{client.port}"
    form = {"token": viewer, "next": "/pickup", "confirm": nonce}
    # A cross-site form post (another page's Origin) and a post without the page's value change nothing.
    assert (
        await client.post(
            "/pair", data=form, headers={"Origin": "http://evil.example"}, allow_redirects=False
        )
    ).status == 403
    assert (
        await client.post(
            "/pair",
            data={**form, "confirm": "guess"},
            headers={"Origin": own},
            allow_redirects=False,
        )
    ).status == 403
    assert current() == kitchen
    done = await client.post("/pair", data=form, headers={"Origin": own}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/pickup"
    assert current() == viewer


async def test_a_cross_site_click_is_noticed_by_the_lax_marker(paired_client: TestClient) -> None:
    # A cross-site navigation carries the Lax marker but not the Strict token cookie: still a confirmation.
    client = paired_client
    client.session.cookie_jar.update_cookies({"kds_paired": "1"})
    page = await client.get("/pair", params={"token": PAIR_TOKENS["viewer"]}, allow_redirects=False)
    assert page.status == 200 and "already paired" in await page.text()
    assert not any(c.key == "kds_token" for c in client.session.cookie_jar)


# ----------------------------------------------------------------------------- item 10: least privilege

ROLE_TOKENS = {
    "pos": "pos-token-least-0001",
    "kitchen": "kitchen-token-least-02",
    "viewer": "viewer-token-least-003",
    "grill": "grill-only-token-00004",
}
CUSTOMER = {
    "name": "Eva Nováková",
    "phone": "+421 900 123 456",
    "address": "Hlavná 1, Košice",
    "email": "eva@example.sk",
}


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLE_TOKENS[who]}"}


@pytest.fixture
async def roles_client(tmp_path: Path, aiohttp_client: Any) -> TestClient:
    from kds.api.auth import hash_token

    tokens = [
        {"name": who, "role": who, "sha256": hash_token(ROLE_TOKENS[who])}
        for who in ("pos", "kitchen", "viewer")
    ]
    tokens.append(
        {
            "name": "grill-screen",
            "role": "kitchen",
            "sha256": hash_token(ROLE_TOKENS["grill"]),
            "endpoints": ["grill"],
        }
    )
    return await daemon_client(
        aiohttp_client, base_config(tmp_path, security={"access": "tokens", "tokens": tokens})
    )


async def ws_messages(
    client: TestClient, who: str, query: str = "", until: int = 1
) -> list[dict[str, Any]]:
    url = f"ws://127.0.0.1:{client.port}/api/v1/ws{query}"
    found = []
    async with websockets.connect(url, additional_headers=bearer(who)) as ws:
        while len(found) < until:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] != "ping":
                found.append(message)
    return found


async def test_viewers_see_orders_without_personal_data(roles_client: TestClient) -> None:
    # The pickup and cashier boards' viewer tokens read the customer's phone and address.
    client = roles_client
    created = await (
        await client.post(
            "/api/v1/orders",
            json=order_body("deliver", ticket={"name": "Delivery 7", "customer": CUSTOMER}),
            headers=bearer("pos"),
        )
    ).json()
    assert created["ticket"]["customer"] == CUSTOMER
    url = f"ws://127.0.0.1:{client.port}/api/v1/ws"
    async with websockets.connect(url, additional_headers=bearer("viewer")) as ws:
        snapshot = json.loads(await ws.recv())
        await client.post(
            "/api/v1/orders",
            json=order_body("deliver-2", ticket={"customer": CUSTOMER}),
            headers=bearer("pos"),
        )
        event = json.loads(await ws.recv())
        while event["type"] == "ping":
            event = json.loads(await ws.recv())
    seen = [
        await (await client.get("/api/v1/orders", headers=bearer("viewer"))).text(),
        await (
            await client.get(f"/api/v1/orders/{created['id']}", headers=bearer("viewer"))
        ).text(),
        json.dumps(snapshot, ensure_ascii=False),
        json.dumps(event, ensure_ascii=False),
    ]
    for text in seen:
        for secret in ("900 123 456", "Hlavná", "eva@example.sk", "Nováková"):
            assert secret not in text, text[:300]
    assert (
        json.loads(seen[1])["ticket"]["name"] == "Delivery 7" and event["type"] == "order.created"
    )
    # The kitchen (and the POS) still see the whole order.
    kitchen = await (
        await client.get(f"/api/v1/orders/{created['id']}", headers=bearer("kitchen"))
    ).json()
    assert kitchen["ticket"]["customer"] == CUSTOMER


async def test_a_kitchen_token_limited_to_an_endpoint(roles_client: TestClient) -> None:
    # A grill screen's token bumps grill tickets only, and its feed and lists hold only grill orders.
    client = roles_client
    both = await (
        await client.post("/api/v1/orders", json=order_body("both"), headers=bearer("pos"))
    ).json()
    bar_only = order_body("bar-only", items=[{"id": 1, "plu": {"name": "Pils", "group": "Drinks"}}])
    bar = await (await client.post("/api/v1/orders", json=bar_only, headers=bearer("pos"))).json()
    grill = bearer("grill")
    base = f"/api/v1/orders/{both['id']}"
    assert (
        await client.post(
            f"{base}/endpoints/grill/status", json={"status": "delivered"}, headers=grill
        )
    ).status == 200
    assert (
        await client.post(
            f"{base}/endpoints/grill/items/1/status", json={"status": "processed"}, headers=grill
        )
    ).status == 200
    for method, path in (
        ("POST", f"{base}/endpoints/bar/status"),
        ("POST", f"{base}/endpoints/bar/items/2/status"),
        ("POST", f"{base}/status"),
        ("POST", f"{base}/items/2/status"),
        ("DELETE", base),
        ("POST", "/api/v1/printers/bar/retry"),
        ("GET", "/screen/bar"),
        ("GET", "/expo"),
    ):
        response = await client.request(
            method, path, json={"status": "processed"} if method == "POST" else None, headers=grill
        )
        assert response.status == 403, (method, path, response.status)
        assert "limited to grill" in (await response.json())["detail"]
    assert (await client.get("/screen/grill", headers=grill)).status == 200
    listing = await (await client.get("/api/v1/orders", headers=grill)).json()
    assert [o["id"] for o in listing["items"]] == [both["id"]]
    assert (await client.get(f"/api/v1/orders/{bar['id']}", headers=grill)).status == 404
    snapshot = (await ws_messages(client, "grill"))[0]
    assert [o["id"] for o in snapshot["orders"]] == [both["id"]]
    with pytest.raises(websockets.InvalidStatus) as err:
        await ws_messages(client, "grill", "?endpoint=bar")
    assert err.value.response.status_code == 403
    # The unlimited kitchen token still does all of it.
    assert (
        await client.post(
            f"{base}/endpoints/bar/status", json={"status": "delivered"}, headers=bearer("kitchen")
        )
    ).status == 200


async def test_metrics_and_readiness_details_need_a_token(roles_client: TestClient) -> None:
    # /metrics and /readyz's component details (sources, printers, counts) were public in "tokens" mode.
    client = roles_client
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=bearer("viewer"))).status == 200
    bare = await client.get("/readyz")
    assert bare.status == 200 and await bare.json() == {"status": "ok"}
    detailed = await (await client.get("/readyz", headers=bearer("viewer"))).json()
    assert detailed["status"] == "ok" and "store" in detailed["components"]
    assert (await client.get("/healthz")).status == 200


def test_kds_token_makes_a_limited_kitchen_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `kds token --endpoints` prints the config lines; config refuses unknown endpoints and limits on other roles.
    import tomllib

    from kds.cli import main
    from kds.config import ConfigError

    assert (
        main(["token", "--role", "kitchen", "--name", "grill-screen", "--endpoints", "grill,cold"])
        == 0
    )
    out = capsys.readouterr().out
    snippet = out[out.index("[[security.tokens]]") : out.index("pair a screen")]
    token = tomllib.loads(snippet)["security"]["tokens"][0]
    assert token["endpoints"] == ["grill", "cold"] and token["role"] == "kitchen"
    assert "next=/screen/grill" in out
    settings_from_dict(base_config(tmp_path, security={"access": "tokens", "tokens": [token]}))
    with pytest.raises(ConfigError, match="unknown endpoint"):
        settings_from_dict(
            base_config(tmp_path, security={"tokens": [{**token, "endpoints": ["fryer"]}]})
        )
    with pytest.raises(ConfigError, match="kitchen"):
        settings_from_dict(
            base_config(tmp_path, security={"tokens": [{**token, "role": "viewer"}]})
        )
    assert main(["token", "--role", "viewer", "--name", "board", "--endpoints", "grill"]) == 2


async def test_pages_may_connect_to_their_own_origin_only(client: TestClient) -> None:
    # connect-src allowed any ws: or wss: host; 'self' covers this origin's websocket (CSP 3).
    csp = (await client.get("/board")).headers["Content-Security-Policy"]
    assert "connect-src 'self';" in csp and "ws:" not in csp


async def test_a_request_without_host_is_not_a_browser(tmp_path: Path, aiohttp_client: Any) -> None:
    # HTTP/1.0 tools may send no Host; browsers (and so rebinding pages) always do.
    client = await daemon_client(aiohttp_client, base_config(tmp_path))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /api/v1/orders HTTP/1.0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")), answer[:200]
