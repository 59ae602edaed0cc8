"""Connection exhaustion (issue 13, item 3): silent and slow sockets never lock out an order.

A socket that connected and said nothing stayed open for an hour; 260 of them
under a 256-descriptor limit stopped every ingest and `/healthz`. These tests
run the real listener (`kds.app.serve`, or `kds run` under `prlimit`) and wait
on sockets being closed, each wait bounded — no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kds.app import Daemon, serve
from kds.config import settings_from_dict

from .util import KdsProcess, base_config, free_port, order_body, write_config

HEADER_TIMEOUT = 0.5


@contextlib.asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[str]:
    """The daemon served by `serve()` on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    daemon = Daemon(settings_from_dict(config))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(daemon, "127.0.0.1", port, stop))
    await asyncio.wait_for(daemon.listening.wait(), 20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def limited(tmp_path: Path, **server: Any) -> dict[str, Any]:
    defaults = {
        "listen": "127.0.0.1:0",
        "header_timeout": HEADER_TIMEOUT,
        "keepalive_timeout": HEADER_TIMEOUT,
        "max_connections_per_client": 8,
        "limit_loopback": True,
    }
    return base_config(tmp_path, server={**defaults, **server})


async def silent_sockets(
    url: str, n: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(url.rsplit(":", 1)[1])
    return [await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5) for _ in range(n)]


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True once the server closed the socket (EOF or reset), bounded by `timeout`."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass  # a 503 answer before the close is fine
    except ConnectionError:
        pass
    return True


async def ingest_and_health(url: str, external_id: str) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(f"{url}/api/v1/orders", json=order_body(external_id)) as response:
            assert response.status == 201, await response.text()
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200


async def test_silent_sockets_beyond_the_cap_never_lock_out_a_request(tmp_path: Path) -> None:
    # 20 silent sockets from one client with a cap of 8: the oldest idle ones make room, an order
    # and /healthz still go through, and every silent socket is closed within the header timeout.
    async with running(limited(tmp_path)) as url:
        silent = await silent_sockets(url, 20)
        await ingest_and_health(url, "past-the-cap")
        for reader, writer in silent:
            assert await closed_by_server(reader)
            writer.close()


async def test_headers_sent_a_byte_at_a_time_are_cut_off(tmp_path: Path) -> None:
    # Slowloris: headers begun and never finished are closed after header_timeout, although
    # the socket keeps sending; a keep-alive connection idle past keepalive_timeout is closed too.
    async with running(limited(tmp_path)) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def dribble() -> None:
            for _ in range(100):
                writer.write(b"X-A: b\r\n")
                await asyncio.sleep(
                    HEADER_TIMEOUT / 5
                )  # the client's pace, not a wait for the server

        dribbler = asyncio.create_task(dribble())
        try:
            assert await closed_by_server(reader)
        finally:
            dribbler.cancel()
            await asyncio.gather(dribbler, return_exceptions=True)
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(reader.readuntil(b'{"status": "ok"}'), 5)
        assert await closed_by_server(reader)  # idle after its answer: the keep-alive timeout
        writer.close()


async def test_a_client_whose_connections_are_all_busy_gets_503(tmp_path: Path) -> None:
    # Busy connections (here: websockets, a request in progress) are never cut to make room;
    # a ninth connection from the same client is answered 503 and closed. Others are not affected.
    async with running(limited(tmp_path, header_timeout=30, keepalive_timeout=30)) as url:
        async with aiohttp.ClientSession() as http:
            sockets = [await http.ws_connect(f"{url}/api/v1/ws") for _ in range(8)]
            for ws in sockets:
                assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
            port = int(url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer
            writer.close()
            for ws in sockets:
                assert not ws.closed
                await ws.close()


async def test_loopback_is_exempt_from_the_per_client_cap_by_default(tmp_path: Path) -> None:
    # The kds box's own kiosk and tools (and `kds bench`'s hundreds of screens) share 127.0.0.1.
    async with running(
        limited(tmp_path, limit_loopback=False, header_timeout=30, keepalive_timeout=30)
    ) as url:
        async with aiohttp.ClientSession() as http:
            sockets = [await http.ws_connect(f"{url}/api/v1/ws") for _ in range(12)]
            await ingest_and_health(url, "loopback")
            for ws in sockets:
                await ws.close()


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
async def test_260_idle_sockets_under_256_descriptors_still_ingest(tmp_path: Path) -> None:
    # The report's case, with default timeouts: `kds run` limited to 256 descriptors, 260 idle
    # sockets from this machine; an order and /healthz still get through at once.
    config = base_config(tmp_path)
    kds = KdsProcess(
        write_config(tmp_path / "config.toml", config),
        tmp_path / "kds.sqlite3",
        wrapper=["prlimit", "--nofile=256"],
    ).start()
    try:
        silent = []
        for _ in range(260):
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                silent.append(
                    await asyncio.wait_for(asyncio.open_connection("127.0.0.1", kds.port), 3)
                )
        await ingest_and_health(kds.url, "fd-limit")
        for _, writer in silent:
            writer.close()
    finally:
        assert kds.stop() == 0


def test_the_unit_raises_the_descriptor_limit() -> None:
    # Under systemd the default soft limit is 1024; the unit asks for room for the connection cap.
    unit = (Path(__file__).resolve().parent.parent / "systemd" / "kds.service").read_text()
    limits = [
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("LimitNOFILE=")
    ]
    assert limits and int(limits[0]) >= 4096
