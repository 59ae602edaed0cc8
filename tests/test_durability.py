"""Nothing acknowledged is lost: SIGKILL right after the last answer, restart, everything is there."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from .util import KdsProcess, base_config, order_body, write_config


def start_kds(tmp_path: Path) -> KdsProcess:
    data = base_config(tmp_path, logging={"level": "info", "format": "json"})
    config = write_config(tmp_path / "config.toml", data)
    return KdsProcess(config, tmp_path / "kds.sqlite3").start()


async def test_sigkill_after_last_ack_loses_no_order_or_status(tmp_path: Path) -> None:
    # 200 orders posted concurrently and 50 status changes; SIGKILL at once after the last 2xx;
    # after a restart all 200 orders are there with every acknowledged change in their history.
    kds = start_kds(tmp_path)
    acked: dict[str, dict[str, Any]] = {}
    try:
        async with aiohttp.ClientSession(kds.url) as http:

            async def ingest(i: int) -> None:
                async with http.post("/api/v1/orders", json=order_body(f"k{i}")) as response:
                    assert response.status == 201
                    acked[f"k{i}"] = await response.json()

            await asyncio.gather(*(ingest(i) for i in range(200)))
            changed = list(acked.values())[:50]

            async def deliver(order: dict[str, Any]) -> None:
                path = f"/api/v1/orders/{order['id']}/endpoints/grill/status"
                async with http.post(path, json={"status": "delivered"}) as response:
                    assert response.status == 200

            await asyncio.gather(*(deliver(o) for o in changed))
        kds.kill()
        kds.start()
        async with aiohttp.ClientSession(kds.url) as http:
            async with http.get("/api/v1/orders", params={"$take": "1000"}) as response:
                listing = await response.json()
            assert listing["totalCount"] == 200
            stored = {o["externalId"]: o for o in listing["items"]}
            assert set(stored) == set(acked)
            for order in changed:
                grill = stored[order["externalId"]]["items"][0]["endpoints"][0]
                assert [c["status"] for c in grill["statusChanges"]] == [
                    "created",
                    "sent",
                    "delivered",
                ]
                assert stored[order["externalId"]]["id"] == order["id"]
            numbers = {o["number"] for o in stored.values()}
            assert len(numbers) == 200  # pickup numbers were not handed out twice
        # The feed's sequence numbers continue past anything the killed run could have issued.
        async with websockets.connect(kds.url.replace("http", "ws") + "/api/v1/ws") as ws:
            pages = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
            while pages[-1]["more"]:
                pages.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert pages[0]["seq"] >= 100_000 and sum(len(p["orders"]) for p in pages) == 200
    finally:
        kds.kill()


async def test_sigterm_is_a_clean_shutdown(tmp_path: Path) -> None:
    kds = start_kds(tmp_path)
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            async with http.post("/api/v1/orders", json=order_body("t1")) as response:
                assert response.status == 201
        assert kds.stop() == 0
        assert '"kds.stopped"' in kds.log_path.read_text()
        kds.start()
        async with aiohttp.ClientSession(kds.url) as http:
            async with http.get("/api/v1/orders", params={"externalId": "t1"}) as response:
                assert (await response.json())["totalCount"] == 1
    finally:
        kds.kill()
