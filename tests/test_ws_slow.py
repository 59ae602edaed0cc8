"""Screens that stop reading: closed with 1013 (try again later), never left to a silent drop."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.api.ws import ScreenLimits
from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings

from .test_ws import needs_uvloop, on_daemon_loop, recv, ws_url
from .util import wait_until

TRY_AGAIN_LATER = 1013


async def closed_with(
    ws: websockets.ClientConnection, timeout: float = 10
) -> tuple[int, list[str]]:
    """Read on until the server's close frame: its code and the messages before it (bounded wait)."""
    got: list[str] = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                got.append(str(await ws.recv()))
    assert closed.value.rcvd is not None, f"no close frame from the server: {closed.value!r}"
    return closed.value.rcvd.code, got


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    """Heartbeats and send deadlines run on the test's clock."""
    return Daemon(settings, clock=clock)


async def test_a_screen_that_stops_reading_gets_1013_not_a_silent_drop(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # A kiosk whose browser hangs reads nothing, so it answers no ping: once `heartbeat` passed
    # (checked every heartbeat/2) the daemon sends close 1013 (the screen resumes with since),
    # not a dropped link (1006).
    limits = daemon.hub.limits = ScreenLimits(close_grace=5)
    # max_queue=1: the client stops reading its socket once one message waits unread.
    async with websockets.connect(ws_url(client), max_queue=1, ping_interval=None) as ws:
        await wait_until(lambda: daemon.hub.clients, timeout=5)
        await clock.advance(limits.heartbeat - 1)
        assert daemon.hub.clients  # not given up before the heartbeat
        await clock.advance(limits.heartbeat)
        await wait_until(lambda: not daemon.hub.clients, timeout=10)  # the daemon gave up on it
        code, _ = await closed_with(ws)
        assert code == TRY_AGAIN_LATER
        assert "too slow" in ws.close_reason


async def test_a_screen_whose_queue_overflows_gets_1013(client: TestClient, daemon: Daemon) -> None:
    await queue_overflow(client, daemon)


@needs_uvloop
def test_on_the_daemons_loop_a_screen_whose_queue_overflows_gets_1013(daemon: Daemon) -> None:
    on_daemon_loop(daemon, lambda client: queue_overflow(client, daemon))


async def queue_overflow(client: TestClient, daemon: Daemon) -> None:
    # More events queued for one screen than `queue_limit`: it is closed with 1013 at once
    # instead of after the whole backlog, and a resume with since gets what it missed.
    daemon.hub.limits = ScreenLimits(queue_limit=5)
    # max_queue=1, max_size=None: the client takes frames of any size but stops reading its
    # socket while one message waits unread.
    async with websockets.connect(ws_url(client), max_queue=1, max_size=None) as ws:
        await recv(ws)
        await wait_until(lambda: daemon.hub.clients, timeout=5)
        screen = next(iter(daemon.hub.clients))
        # A screen that keeps up is written to at once; this one first stops keeping up: its
        # socket fills until the daemon's side buffers (bounded: the kernel's buffers are finite).
        for _ in range(2_000):
            if not screen.caught_up():
                break
            daemon.bus.publish("test.filler", {"pad": "x" * 256 * 1024})
        assert not screen.caught_up()
        seq = daemon.bus.seq
        for n in range(20):  # one burst: the send loop cannot run between these
            daemon.bus.publish("test.burst", {"n": n})
        code, got = await closed_with(ws)
        assert code == TRY_AGAIN_LATER
        assert not [m for m in got if "test.burst" in m]  # closed at once, not after the backlog
    daemon.hub.limits = ScreenLimits()  # the replay of 20 events must fit now
    async with websockets.connect(ws_url(client, since=seq)) as ws:
        assert [(await recv(ws))["n"] for _ in range(20)] == list(range(20))


async def test_a_reading_screen_stays_connected_past_the_heartbeat(
    client: TestClient, daemon: Daemon, clock: ManualClock
) -> None:
    # A screen that reads answers the daemon's pings and is never closed as too slow.
    limits = daemon.hub.limits
    async with websockets.connect(ws_url(client)) as ws, asyncio.TaskGroup() as group:
        await recv(ws)
        reader = group.create_task(_read_all(ws))  # the browser keeps reading (and answering pings)
        screen = next(iter(daemon.hub.clients))
        for _ in range(6):  # three heartbeats: a ping every heartbeat/2, each answered
            await clock.advance(limits.heartbeat / 2)
            await wait_until(lambda: screen.heard == clock.monotonic(), timeout=5)
        assert daemon.hub.clients == {screen}
        reader.cancel()


async def _read_all(ws: websockets.ClientConnection) -> None:
    async for _ in ws:
        pass
