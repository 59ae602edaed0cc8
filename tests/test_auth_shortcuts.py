"""Access control's per-request shortcuts decide exactly as the full checks do.

`AccessControl.check` runs on every request, so it skips work where the answer is
known: a Content-Type of exactly `application/json`, a Host header it allowed
before, no Cookie header. These tests send, on one keep-alive client, the requests
next to each shortcut that it must not let through (or refuse), and compare status
and text with what the full check answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict

from .util import base_config, order_body


async def _client(aiohttp_client: Any, tmp_path: Path) -> Any:
    config = base_config(tmp_path, server={"listen": "127.0.0.1:0", "allowed_hosts": ["kds.lan"]})
    return await aiohttp_client(Daemon(settings_from_dict(config)).app)


async def test_content_types_next_to_plain_json(tmp_path: Path, aiohttp_client: Any) -> None:
    client = await _client(aiohttp_client, tmp_path)
    cases = [
        ("application/json", 201),
        ("application/jsonp", 415),
        ("application/json; charset=utf-8", 201),
        ("Application/JSON", 201),
        ("application/json-seq", 415),
        ("application/json ", 201),
        ("text/json", 415),
        ("application/json", 201),
        ("application/x-json", 415),
    ]
    for i, (content_type, status) in enumerate(cases):
        body = json.dumps(order_body(f"ct-{i}")).encode()
        response = await client.post(
            "/api/v1/orders",
            data=body,
            headers={"Content-Type": content_type},
            skip_auto_headers=["Content-Type"],
        )
        assert response.status == status, (content_type, await response.text())
        if status == 415:
            assert await response.json() == {
                "error": "unsupported_media_type",
                "detail": "send the body as Content-Type: application/json, "
                f"not {content_type.lower()!r}",
            }


async def test_a_host_allowed_once_does_not_let_others_through(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await _client(aiohttp_client, tmp_path)
    port = client.port
    refused = {
        "evil.example": "evil.example",
        f"kds.lan.evil.example:{port}": "kds.lan.evil.example",
        f"KDS.LAN.evil:{port}": "kds.lan.evil",
    }
    allowed = [f"127.0.0.1:{port}", "kds.lan", f"KDS.LAN.:{port}", "screen.localhost"]
    for _ in range(2):  # each a second time: an answer kept from the first must be the same
        for host in allowed:
            response = await client.get("/api/v1/orders", headers={"Host": host})
            assert response.status == 200, (host, await response.text())
            response = await client.post(
                "/api/v1/orders", json=order_body(f"h-{host}-{_}"), headers={"Host": host}
            )
            assert response.status == 201, (host, await response.text())
        for host, name in refused.items():
            for method in ("GET", "POST"):
                response = await client.request(
                    method, "/api/v1/orders", json=order_body("no"), headers={"Host": host}
                )
                assert response.status == 403, (host, method, response.status)
                assert await response.json() == {
                    "error": "forbidden",
                    "detail": f"this kds does not serve the name {name!r} "
                    "(add it to [server] allowed_hosts)",
                }


async def test_cookies_other_than_the_token_change_nothing(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await _client(aiohttp_client, tmp_path)
    response = await client.post(
        "/api/v1/orders", json=order_body("c-1"), headers={"Cookie": "theme=dark"}
    )
    assert response.status == 201, await response.text()
    response = await client.post(
        "/api/v1/orders", json=order_body("c-2"), headers={"Cookie": "theme=dark; kds_token=nope"}
    )
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized", "detail": "unknown token"}
    response = await client.post("/api/v1/orders", json=order_body("c-3"))
    assert response.status == 201, await response.text()
