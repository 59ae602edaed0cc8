"""Stopping the daemon: screens first and told so, everything within one deadline, nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp.test_utils import TestServer

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.simulators.printer import VirtualPrinter

from .util import base_config, order_body, wait_until


async def test_a_connected_screen_is_told_1001_and_does_not_hold_the_shutdown_up(
    tmp_path: Path,
) -> None:
    # The screens are closed with 1001 (going away) before aiohttp waits for open requests,
    # so an open websocket neither waits out the shutdown grace nor is cut without a close frame.
    daemon = Daemon(settings_from_dict(base_config(tmp_path, server={"shutdown_grace": "30s"})))
    server = TestServer(daemon.app, host="127.0.0.1")
    await server.start_server()
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/api/v1/ws") as ws:
        await ws.recv()  # the snapshot
        await wait_until(lambda: daemon.hub.clients)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.close()
        took = loop.time() - started
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert took < 10, f"shutdown took {took:.1f}s with one screen open"


@pytest.fixture
def stalled_printer_config(tmp_path: Path, printer: VirtualPrinter) -> dict[str, Any]:
    """The grill prints on a printer whose status answer after a job never comes (60 s wait)."""
    return base_config(
        tmp_path,
        server={"shutdown_grace": "1s"},
        endpoints=[
            {
                "name": "grill",
                "display": True,
                "printer": {"address": printer.address, "status_timeout": 60, "attempts": 1},
            },
            {"name": "cold", "display": True},
            {"name": "bar", "display": True},
        ],
    )


async def test_one_deadline_bounds_a_printer_stuck_mid_ticket_and_the_ticket_survives(
    stalled_printer_config: dict[str, Any], printer: VirtualPrinter
) -> None:
    # A printer stalls after taking a ticket's bytes: the stop does not wait its 60 s status
    # timeout but the 1 s shutdown deadline; the store still closes cleanly and the ticket is
    # pending again on the next start.
    await printer.set_mode("stall")
    daemon = Daemon(settings_from_dict(stalled_printer_config))
    server = TestServer(daemon.app, host="127.0.0.1")
    await server.start_server()
    orders = server.make_url("/api/v1/orders")
    async with aiohttp.ClientSession() as http, http.post(orders, json=order_body("s1")) as r:
        assert r.status == 201
    await wait_until(lambda: printer.bytes_received > 100)  # the ticket's bytes, not a probe's
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.close()
    took = loop.time() - started
    assert took < 10, f"shutdown took {took:.1f}s"
    again = Daemon(settings_from_dict(stalled_printer_config))
    await again.store.start()
    try:
        await again.outbox.start()
        assert again.outbox.pending_count == 1
    finally:
        await again.store.stop()
