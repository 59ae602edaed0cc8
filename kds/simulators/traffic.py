"""Random traffic at a mean rate, for the simulators and `kds demo`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable


async def paced(
    step: Callable[[], object | Awaitable[object]],
    per_minute: float,
    stop: asyncio.Event,
    rng: random.Random,
) -> None:
    """Call `step()` about `per_minute` times a minute (Poisson arrivals) until `stop` is set."""
    while not stop.is_set():
        result = step()
        if asyncio.iscoroutine(result):
            await result
        try:
            await asyncio.wait_for(stop.wait(), rng.expovariate(per_minute / 60.0))
        except TimeoutError:
            pass
