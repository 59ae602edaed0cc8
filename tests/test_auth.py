"""Access control: nobody without the right token may inject, bump or cancel anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.api.auth import hash_token

from .util import KdsProcess, base_config, order_body, write_config

TOKENS = {
    "pos": "pos-secret-token",
    "kitchen": "kitchen-secret-token",
    "viewer": "viewer-secret-token",
}


def secured(config: dict[str, Any], **security: Any) -> dict[str, Any]:
    config["security"] = {
        "access": "tokens",
        "tokens": [
            {"name": f"{role}-1", "role": role, "sha256": hash_token(t)}
            for role, t in TOKENS.items()
        ],
        **security,
    }
    return config


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    return secured(base_config(tmp_path))


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


async def make_order(client: TestClient) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=order_body("a1"), headers=auth("pos"))
    assert response.status == 201
    return await response.json()


STATE_CHANGING = [
    ("POST", "/api/v1/orders/{id}/status"),
    ("POST", "/api/v1/orders/{id}/items/1/status"),
    ("POST", "/api/v1/orders/{id}/endpoints/grill/status"),
    ("POST", "/api/v1/orders/{id}/endpoints/grill/items/1/status"),
    ("DELETE", "/api/v1/orders/{id}"),
]


async def test_every_state_changing_route_refuses_unauthenticated_requests(
    client: TestClient,
) -> None:
    # No token, a wrong token: 401 and nothing changes; ingest too.
    order = await make_order(client)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await client.post("/api/v1/orders", json=order_body("x"), headers=headers)
        assert response.status == 401 and (await response.json())["error"] == "unauthorized"
        for method, path in STATE_CHANGING:
            response = await client.request(
                method, path.format(id=order["id"]), json={"status": "delivered"}, headers=headers
            )
            assert response.status == 401, (method, path)
    after = await (await client.get(f"/api/v1/orders/{order['id']}", headers=auth("viewer"))).json()
    assert after == order
    listing = await (await client.get("/api/v1/orders", headers=auth("viewer"))).json()
    assert listing["totalCount"] == 1


async def test_roles(client: TestClient) -> None:
    # viewer reads only; pos ingests and cancels but cannot bump; kitchen bumps but cannot ingest.
    order = await make_order(client)
    path = f"/api/v1/orders/{order['id']}/endpoints/grill/status"
    assert (
        await client.post(path, json={"status": "delivered"}, headers=auth("viewer"))
    ).status == 403
    assert (
        await client.post(path, json={"status": "delivered"}, headers=auth("pos"))
    ).status == 403
    assert (
        await client.post("/api/v1/orders", json=order_body("k"), headers=auth("kitchen"))
    ).status == 403
    assert (
        await client.post(path, json={"status": "delivered"}, headers=auth("kitchen"))
    ).status == 200
    # "retry the printer now" is the kitchen's too (404 here: this restaurant has no printer).
    assert (await client.post("/api/v1/printers/grill/retry", headers=auth("viewer"))).status == 403
    assert (
        await client.post("/api/v1/printers/grill/retry", headers=auth("kitchen"))
    ).status == 404
    assert (await client.get("/api/v1/printers", headers=auth("viewer"))).status == 200
    assert (await client.get("/api/v1/orders", headers=auth("viewer"))).status == 200
    assert (await client.get("/api/v1/orders")).status == 401
    assert (await client.get("/healthz")).status == 200
    assert (await client.delete(f"/api/v1/orders/{order['id']}", headers=auth("pos"))).status == 200


async def test_pairing_sets_an_httponly_cookie_that_authenticates(client: TestClient) -> None:
    response = await client.get(
        "/pair",
        params={"token": TOKENS["kitchen"], "next": "/api/v1/endpoints"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/api/v1/endpoints"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert (
        await client.get("/api/v1/endpoints")
    ).status == 200  # the client's cookie jar sends it now
    bad = await client.get("/pair", params={"token": "nope"}, allow_redirects=False)
    assert bad.status == 401
    offsite = await client.get(
        "/pair",
        params={"token": TOKENS["kitchen"], "next": "//evil.example"},
        allow_redirects=False,
    )
    assert offsite.status == 400


async def test_websocket_needs_a_token_and_a_matching_origin(client: TestClient) -> None:
    url = f"ws://127.0.0.1:{client.port}/api/v1/ws"
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url):
            pass
    assert err.value.response.status_code == 401
    headers = auth("viewer")
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(
            url, additional_headers=headers, origin="http://evil.example"
        ):
            pass
    assert err.value.response.status_code == 403
    async with websockets.connect(
        url, additional_headers=headers, origin=f"http://127.0.0.1:{client.port}"
    ) as ws:
        assert "snapshot" in await ws.recv()


async def test_loopback_access_trusts_this_machine_only(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # The default: same-machine tools need no token, but a presented wrong token is still refused.
    from kds.app import Daemon
    from kds.config import settings_from_dict

    daemon = Daemon(settings_from_dict(base_config(tmp_path)))
    client = await aiohttp_client(daemon.app)
    assert (await client.post("/api/v1/orders", json=order_body("lo"))).status == 201
    assert (
        await client.get("/api/v1/orders", headers={"Authorization": "Bearer wrong"})
    ).status == 401


async def test_ingest_rate_limit_per_client(tmp_path: Path, aiohttp_client: Any) -> None:
    from kds.app import Daemon
    from kds.config import settings_from_dict

    config = secured(base_config(tmp_path), ingest_rate=0.001, ingest_burst=3)
    client = await aiohttp_client(Daemon(settings_from_dict(config)).app)
    statuses = [
        (await client.post("/api/v1/orders", json=order_body(f"r{i}"), headers=auth("pos"))).status
        for i in range(5)
    ]
    assert statuses == [201, 201, 201, 429, 429]


async def test_tokens_never_appear_in_the_log(tmp_path: Path) -> None:
    config = secured(base_config(tmp_path, logging={"level": "debug", "format": "json"}))
    kds = KdsProcess(write_config(tmp_path / "c.toml", config), tmp_path / "kds.sqlite3").start()
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            for role, token in TOKENS.items():
                async with http.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}):
                    pass
                async with http.get("/pair", params={"token": token}, allow_redirects=False):
                    pass
            async with http.post(
                "/api/v1/orders", json=order_body("log"), headers=auth("pos")
            ) as response:
                assert response.status == 201
            async with http.get(
                "/api/v1/orders", headers={"Authorization": "Bearer not-a-real-token"}
            ):
                pass
        assert kds.stop() == 0
        log = kds.log_path.read_text()
        assert "kds.ready" in log
        for token in [*TOKENS.values(), "not-a-real-token"]:
            assert token not in log
    finally:
        kds.kill()
