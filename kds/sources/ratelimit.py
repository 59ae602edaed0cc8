"""A token bucket that keeps a source under its POS's request limit.

ready2order allows 60 requests a minute per account token (seed 001). A plain
token bucket with capacity B and refill r allows B + r·T requests in any T
seconds, so the refill is chosen as (limit − B − margin) / period: whatever
the pattern, no `period`-long window holds more than `limit` requests. A 429
from the POS empties the bucket and blocks it for the server's `Retry-After`
(or an exponential backoff), so kds backs off instead of storming.

Every request of one account token (webhook fetches, the safety-net poll, the
catalogue refresh) takes a token from the same bucket; the daemon keeps one
bucket per account (`SourceContext.shared`), so two sources on one token share it. Requests are served
in order, except that `background` ones (the catalogue refresh) wait behind
every other waiter and leave `spare` tokens unused, so an order fetch that
comes in while the catalogue is read takes the next token, not the last.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any


class TokenBucket:
    """An async token bucket with 429 backoff."""

    def __init__(
        self,
        limit: int = 60,
        period: float = 60.0,
        *,
        burst: int | None = None,
        margin: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_backoff: float = 120.0,
        spare: int = 1,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.capacity = float(burst if burst is not None else max(1, min(5, limit // 4)))
        sustained = max(limit - self.capacity - margin, 1.0)
        self.capacity = min(self.capacity, float(limit))
        self.rate = sustained / period  # tokens per second
        self.max_backoff = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp: float | None = None  # first read in the loop (a loop clock needs one)
        self._blocked_until = 0.0
        self._throttles = 0
        # Background requests leave this many tokens for the others (never the whole bucket).
        self.spare = max(0, min(spare, int(self.capacity) - 1))
        self._queue: list[tuple[bool, int]] = []  # (background, arrival): the head is served next
        self._arrivals = itertools.count()
        self._turn: asyncio.Future[None] | None = None
        self.acquired = 0
        self.throttled = 0

    def _refill(self) -> None:
        now = self._clock()
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def delay(self, spare: int = 0) -> float:
        """Seconds until a token is available with `spare` more left (0 when now)."""
        self._refill()
        now = self._clock()
        wait = max(0.0, self._blocked_until - now)
        needed = 1 + spare
        if self._tokens < needed - 1e-9:
            # Never wait less than a millisecond: float dust must not spin the loop.
            wait = max(wait, (needed - self._tokens) / self.rate, 0.001)
        return wait

    async def acquire(self, *, background: bool = False) -> None:
        """Wait for a token and take it: in arrival order, background requests after all others."""
        ticket = (background, next(self._arrivals))
        heapq.heappush(self._queue, ticket)
        try:
            while True:
                if self._queue[0] != ticket:
                    await self._next_turn()
                    continue
                wait = self.delay(self.spare if background else 0)
                if wait <= 0:
                    break
                await self._sleep(wait)  # a request queued meanwhile may be served first
            self._tokens = max(0.0, self._tokens - 1)
            self.acquired += 1
        finally:
            self._queue.remove(ticket)
            heapq.heapify(self._queue)
            self._pass_turn()

    async def _next_turn(self) -> None:
        """Wait until the head of the queue changes."""
        if self._turn is None or self._turn.done():
            self._turn = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._turn)

    def _pass_turn(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.set_result(None)

    def penalize(self, retry_after: float | None = None) -> float:
        """The POS answered 429: empty the bucket and block it; returns the block in seconds."""
        self._refill()
        self.throttled += 1
        self._throttles += 1
        if retry_after is None or retry_after <= 0:
            retry_after = min(
                self.max_backoff, self.period / self.limit * 2 ** min(self._throttles, 8)
            )
        self._tokens = 0.0
        self._blocked_until = max(self._blocked_until, self._clock() + retry_after)
        return retry_after

    def succeeded(self) -> None:
        """A request went through: the next 429 starts the backoff afresh."""
        self._throttles = 0

    def health(self) -> dict[str, Any]:
        """Tokens left and whether the POS throttled us."""
        self._refill()
        return {
            "tokens": round(self._tokens, 2),
            "blockedFor": round(max(0.0, self._blocked_until - self._clock()), 1),
            "throttled": self.throttled,
        }


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (only the delta-seconds form; dates are rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
