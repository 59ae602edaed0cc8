"""systemd integration: `Type=notify` readiness and the watchdog, without a dependency.

`READY=1` is sent only once the daemon listens and every component started;
the watchdog is pinged from a task on the event loop, so a blocked loop (the
thing the watchdog exists to catch) stops the pings and systemd restarts kds.
"""

from __future__ import annotations

import asyncio
import os
import socket

import structlog

log = structlog.get_logger(__name__)


def notify(message: str) -> bool:
    """Send `message` to systemd's notify socket; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as err:
        log.warning("systemd.notify_failed", error=str(err))
        return False


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec), or None when off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog_loop(interval: float) -> None:
    """Ping the watchdog every `interval` seconds while the loop runs."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
