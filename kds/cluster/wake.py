"""The one wait of the cluster's loops: woken by a notification, or by a poll as a safety net."""

from __future__ import annotations

import asyncio
import contextlib


async def woken(wake: asyncio.Event, interval: float) -> None:
    """Wait until `wake` is set or `interval` seconds passed, then clear it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), interval)
    wake.clear()
