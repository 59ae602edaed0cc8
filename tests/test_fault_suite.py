"""The fault suite: a full or read-only disk, a source repeating itself, printer and POS faults.

Each test breaks one thing for real — a 8 MB tmpfs filled to the last byte, an
ext4 image whose kernel driver turns it read-only after an error (what a dying
SD card does), a virtual printer that goes offline / runs out of paper / hangs /
drops the connection / crawls, a PORTOS simulator answering 500, 429, garbage,
nothing at all or "token expired" — and checks that kds keeps serving, refuses
(503) what it cannot store, acknowledges nothing that was not stored, and ends
consistent once the fault is gone.

The disk tests need root (mount); they skip, saying so, where the machine
cannot mount.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.simulators.portos import PortosSimulator
from kds.simulators.printer import VirtualPrinter

from .crash.harness import check_order_whole, check_prints, check_writebacks, read_outbox
from .util import base_config, order_body, wait_until


# --------------------------------------------------------------------------- helpers


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted in tmp_path (needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = _run("mount", "-t", "tmpfs", "-o", "size=8m", "kds-fault", str(mount))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        _run("umount", "-l", str(mount))


class Ext4Image:
    """An ext4 file system on a loop device, mounted with errors=remount-ro."""

    def __init__(self, tmp_path: Path) -> None:
        self.image = tmp_path / "disk.ext4"
        self.mount = tmp_path / "ext4"
        self.mount.mkdir()

    def mount_rw(self) -> None:
        result = _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount))
        if result.returncode != 0:
            raise RuntimeError(f"mount failed: {result.stderr}")

    @property
    def device(self) -> str:
        return os.path.basename(_run("findmnt", "-n", "-o", "SOURCE", str(self.mount)).stdout.strip())

    def fail(self) -> None:
        """An I/O error as the kernel sees one: ext4 aborts its journal and goes read-only."""
        Path(f"/sys/fs/ext4/{self.device}/trigger_fs_error").write_text("kds fault suite\n")

    def read_only(self) -> bool:
        options = _run("findmnt", "-n", "-o", "OPTIONS", str(self.mount)).stdout
        return "emergency_ro" in options or options.startswith("ro")

    def repair(self) -> None:
        """What the owner does: unmount, fsck, mount again."""
        _run("umount", str(self.mount))
        _run("e2fsck", "-fy", str(self.image))
        self.mount_rw()

    def unmount(self) -> None:
        _run("umount", "-l", str(self.mount))


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Ext4Image]:
    """A 32 MB ext4 image, mounted (needs root, loop devices and ext4's trigger_fs_error)."""
    disk = Ext4Image(tmp_path)
    result = _run("truncate", "-s", "32M", str(disk.image))
    if result.returncode == 0:
        result = _run("mkfs.ext4", "-q", str(disk.image))
    if result.returncode != 0:
        pytest.skip(f"cannot make an ext4 image here: {result.stderr.strip()}")
    try:
        disk.mount_rw()
    except RuntimeError as err:
        pytest.skip(f"cannot loop-mount an ext4 image here (needs root and loop devices): {err}")
    if not Path(f"/sys/fs/ext4/{disk.device}/trigger_fs_error").exists():
        disk.unmount()
        pytest.skip("this kernel's ext4 has no trigger_fs_error to fail the disk with")
    try:
        yield disk
    finally:
        disk.unmount()


def fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 512, 1):  # big chunks, then the last few bytes
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


async def start_daemon(aiohttp_client: Any, config: dict[str, Any]) -> tuple[Daemon, TestClient]:
    daemon = Daemon(settings_from_dict(config))
    return daemon, await aiohttp_client(daemon.app)


async def post_order(client: TestClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/orders", json=body)
    return response.status, await response.json()


async def all_orders(client: TestClient) -> dict[str, dict[str, Any]]:
    """Live orders by external id."""
    response = await client.get("/api/v1/orders", params={"$take": "1000"})
    assert response.status == 200
    return {o["externalId"]: o for o in (await response.json())["items"]}


async def readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


def assert_whole(orders: dict[str, dict[str, Any]], bodies: dict[str, dict[str, Any]]) -> None:
    problems = [p for ext, body in bodies.items() for p in check_order_whole(orders[ext], body)]
    assert not problems, "\n".join(problems)


def grill_statuses(order: dict[str, Any]) -> list[str]:
    return [e["status"] for i in order["items"] for e in i["endpoints"] if e["name"] == "grill"]


# --------------------------------------------------------------------------- disk


async def test_disk_full_refuses_with_503_acknowledges_only_what_is_stored_and_recovers(
    tmp_path: Path, tmpfs: Path, aiohttp_client: Any
) -> None:
    # The database's file system fills up under load: every order is either 201 and stored, or
    # 503 and not stored (not in the API, not on the feed, not after a restart); /readyz says 503;
    # once space returns the refused orders go in (201, not 200: they were never stored).
    config = base_config(tmp_path, database={"path": str(tmpfs / "kds.sqlite3")})
    daemon, client = await start_daemon(aiohttp_client, config)
    # Bulky orders (long comments), so the disk fills within a few hundred of them.
    bodies = {f"d{i}": order_body(f"d{i}", items=[
        {"id": n, "plu": {"name": f"Dish {n}", "code": 101}, "comment": "x" * 500} for n in range(1, 11)
    ]) for i in range(400)}
    acked: dict[str, str] = {}
    refused: list[str] = []
    async with websockets.connect(f"ws://127.0.0.1:{client.port}/api/v1/ws") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "snapshot"
        for ext in list(bodies)[:5]:
            status, order = await post_order(client, bodies[ext])
            assert status == 201
            acked[ext] = order["id"]

        filler = await asyncio.to_thread(fill, tmpfs)
        assert shutil.disk_usage(tmpfs).free < 65536
        for ext in list(bodies)[5:]:
            status, answer = await post_order(client, bodies[ext])
            assert status in (201, 503), answer
            if status == 201:
                acked[ext] = answer["id"]  # SQLite reused WAL space it already had
                continue
            assert answer["error"] == "unavailable"
            refused.append(ext)
            if len(refused) == 1:
                ready, report = await readyz(client)
                assert ready == 503 and report["status"] == "unavailable"
                assert report["components"]["store"]["ok"] is False
            if len(refused) >= 20:
                break
        assert len(refused) >= 20, f"the full disk never refused a commit ({len(acked)} orders went in)"

        # A status change while the disk is full: refused or applied, never half.
        first = acked["d0"]
        response = await client.post(f"/api/v1/orders/{first}/endpoints/grill/status", json={"status": "delivered"})
        assert response.status in (200, 503)
        shown = grill_statuses((await (await client.get(f"/api/v1/orders/{first}")).json()))
        delivered_while_full = response.status == 200
        assert set(shown) == ({"delivered"} if delivered_while_full else {"sent"})
        # Reads keep working, and the live view never shows a refused order.
        assert (await client.get("/healthz")).status == 200
        live = await all_orders(client)
        assert set(live) == set(acked) and not set(refused) & set(live)

        filler.unlink()  # space returns
        for ext in refused:
            status, answer = await post_order(client, bodies[ext])
            assert status == 201, answer  # created now: it was not stored before
            acked[ext] = answer["id"]
        ready, report = await readyz(client)
        assert ready == 200, report
        if not delivered_while_full:
            response = await client.post(f"/api/v1/orders/{first}/endpoints/grill/status", json={"status": "delivered"})
            assert response.status == 200

        # The feed announced each order once, refused ones only after they went in.
        sentinel = (await post_order(client, order_body("sentinel")))[1]["id"]
        created: list[str] = []

        async def until_sentinel() -> None:
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "order.created":
                    created.append(message["order"]["id"])
                    if message["order"]["id"] == sentinel:
                        return

        await asyncio.wait_for(until_sentinel(), 5)
        assert sorted(created) == sorted([*acked.values(), sentinel])
    await client.close()

    # After a restart: exactly the acknowledged orders, whole.
    _, client = await start_daemon(aiohttp_client, config)
    stored = await all_orders(client)
    assert set(stored) == {*acked, "sentinel"}
    assert {stored[ext]["id"] for ext in acked} == set(acked.values())
    assert_whole(stored, {ext: bodies[ext] for ext in acked})
    assert set(grill_statuses(stored["d0"])) == {"delivered"}
    print(f"\ndisk full: {len(acked)} orders acknowledged and stored, {len(refused)} refused with 503 then stored")


async def test_read_only_disk_refuses_with_503_and_a_restart_after_repair_has_every_acknowledged_order(
    tmp_path: Path, ext4: Ext4Image, aiohttp_client: Any
) -> None:
    # The kernel turns the database's file system read-only after an I/O error: ingest and status
    # changes answer 503, /readyz 503, reads and the feed keep working, shutdown is clean; after
    # fsck and a restart every acknowledged order is there and nothing refused is.
    config = base_config(tmp_path, database={"path": str(ext4.mount / "kds.sqlite3")})
    daemon, client = await start_daemon(aiohttp_client, config)
    acked = {}
    for i in range(5):
        status, order = await post_order(client, order_body(f"r{i}"))
        assert status == 201
        acked[f"r{i}"] = order
    ext4.fail()
    assert ext4.read_only()
    for i in range(5, 15):
        status, answer = await post_order(client, order_body(f"r{i}"))
        assert status == 503 and answer["error"] == "unavailable", answer
    ready, report = await readyz(client)
    assert ready == 503 and report["components"]["store"]["ok"] is False
    response = await client.post(f"/api/v1/orders/{acked['r0']['id']}/endpoints/grill/status", json={"status": "delivered"})
    assert response.status == 503
    response = await client.delete(f"/api/v1/orders/{acked['r1']['id']}")
    assert response.status == 503
    live = await all_orders(client)
    assert set(live) == set(acked)
    assert grill_statuses(live["r0"]) == ["sent"] and grill_statuses(live["r1"]) == ["sent"]
    assert (await client.get("/healthz")).status == 200
    await asyncio.wait_for(client.close(), 15)  # stopping must not hang on the broken disk

    await asyncio.to_thread(ext4.repair)
    _, client = await start_daemon(aiohttp_client, config)
    stored = await all_orders(client)
    assert set(stored) == set(acked)
    assert_whole(stored, {ext: order_body(ext) for ext in acked})
    for i in range(5, 15):
        status, _ = await post_order(client, order_body(f"r{i}"))
        assert status == 201
    assert (await readyz(client))[0] == 200
