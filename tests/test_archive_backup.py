"""Finished orders leave the live tables; `kds backup` copies a running database consistently."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import utcnow

from .util import ROOT, KdsProcess, base_config, order_body, write_config


def live_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("orders", "items", "item_endpoints", "status_changes", "archived_orders")
        }


async def test_finished_orders_are_archived_and_still_answer(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # 300 processed orders and one open one: after the retention the live tables hold only the open
    # order; archived orders still answer GET by id and a repeat POST is recognised (200, not a new order).
    settings = settings_from_dict(
        base_config(
            tmp_path, database={"path": str(tmp_path / "kds.sqlite3"), "archive_after": "1h"}
        )
    )
    daemon = Daemon(settings)
    client = await aiohttp_client(daemon.app)
    finished = []
    for i in range(300):
        response = await client.post("/api/v1/orders", json=order_body(f"done{i}"))
        order = await response.json()
        await client.post(
            f"/api/v1/orders/{order['id']}/endpoints/grill/status", json={"status": "delivered"}
        )
        await client.post(
            f"/api/v1/orders/{order['id']}/endpoints/bar/status", json={"status": "delivered"}
        )
        await client.post(f"/api/v1/orders/{order['id']}/status", json={"status": "processed"})
        finished.append(order["id"])
    open_order = await (await client.post("/api/v1/orders", json=order_body("open"))).json()
    assert await daemon.service.archive_finished() == 0  # not yet past the retention
    archived = await daemon.service.archive_finished(now=utcnow() + timedelta(hours=2))
    assert archived == 300
    rows = live_rows(tmp_path / "kds.sqlite3")
    assert rows["orders"] == 1 and rows["items"] == 2 and rows["archived_orders"] == 300
    listing = await (await client.get("/api/v1/orders")).json()
    assert [o["id"] for o in listing["items"]] == [open_order["id"]]
    old = await client.get(f"/api/v1/orders/{finished[0]}")
    assert old.status == 200 and (await old.json())["status"] == "processed"
    again = await client.post("/api/v1/orders", json=order_body("done0"))
    assert again.status == 200 and (await again.json())["id"] == finished[0]
    changed = order_body("done1")
    changed["items"][0]["quantity"]["amount"] = 9
    assert (await client.post("/api/v1/orders", json=changed)).status == 409


async def test_backup_of_a_running_daemon(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", base_config(tmp_path))
    kds = KdsProcess(config, tmp_path / "kds.sqlite3").start()
    try:
        async with aiohttp.ClientSession(kds.url) as http:
            for i in range(50):
                async with http.post("/api/v1/orders", json=order_body(f"b{i}")) as response:
                    assert response.status == 201
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kds.cli",
                "backup",
                str(tmp_path / "copy.sqlite3"),
                "--config",
                str(config),
                "--db",
                str(tmp_path / "kds.sqlite3"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        copy = live_rows(tmp_path / "copy.sqlite3")
        assert copy["orders"] == 50 and copy["items"] == 100
        with sqlite3.connect(tmp_path / "copy.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        kds.kill()
