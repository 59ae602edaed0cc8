"""The token bucket keeps every minute under the limit and backs off on 429."""

from __future__ import annotations

import asyncio

from kds.sources.ratelimit import TokenBucket, parse_retry_after


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def max_in_window(times: list[float], period: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_never_more_than_limit_in_any_window() -> None:
    # Guarantees: 500 back-to-back requests never put more than 60 in any 60 s window.
    fake = FakeTime()
    bucket = TokenBucket(60, 60.0, clock=fake.clock, sleep=fake.sleep)
    times = []
    for _ in range(500):
        await bucket.acquire()
        times.append(fake.now)
    assert max_in_window(times, 60.0) <= 60
    # ...and it is not needlessly slow: about 55+ a minute sustained.
    assert times[-1] - times[0] < 500 * 60 / 54


async def test_burst_is_served_at_once() -> None:
    # Guarantees: a few requests after idleness go out without waiting.
    fake = FakeTime()
    bucket = TokenBucket(60, 60.0, burst=5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        await bucket.acquire()
    assert fake.slept == []
    await bucket.acquire()
    assert fake.slept and fake.slept[0] > 0


async def test_429_blocks_for_retry_after_then_backs_off_exponentially() -> None:
    # Guarantees: a 429 empties the bucket and blocks it; repeated 429s without Retry-After back off harder.
    fake = FakeTime()
    bucket = TokenBucket(60, 60.0, clock=fake.clock, sleep=fake.sleep)
    assert bucket.penalize(7.0) == 7.0
    start = fake.now
    await bucket.acquire()
    assert fake.now - start >= 7.0
    first = bucket.penalize(None)
    second = bucket.penalize(None)
    assert second > first
    bucket.succeeded()
    assert bucket.penalize(None) < first  # the backoff starts afresh
    assert bucket.throttled >= 3


async def test_waiters_are_served_in_order() -> None:
    # Guarantees: concurrent callers (webhook fetch vs poll) queue FIFO, nobody starves.
    fake = FakeTime()
    bucket = TokenBucket(60, 60.0, burst=1, clock=fake.clock, sleep=fake.sleep)
    order: list[int] = []

    async def take(n: int) -> None:
        await bucket.acquire()
        order.append(n)

    await asyncio.wait_for(asyncio.gather(*(take(n) for n in range(10))), 5)
    assert order == list(range(10))


def test_retry_after_parsing() -> None:
    # Guarantees: Retry-After parsed leniently (one bucket per account: test_daemon_isolation).
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_order_fetches_go_ahead_of_waiting_background_requests() -> None:
    # Guarantees: catalogue (background) requests queued first never delay an order fetch:
    # it takes the next token, and background requests leave a spare token for it.
    fake = FakeTime()
    bucket = TokenBucket(60, 60.0, burst=3, clock=fake.clock, sleep=fake.sleep)
    order: list[str] = []

    async def take(name: str, background: bool) -> None:
        await bucket.acquire(background=background)
        order.append(name)

    catalogue = [asyncio.create_task(take(f"catalogue-{n}", True)) for n in range(6)]
    await asyncio.sleep(0)
    fetch = asyncio.create_task(take("orders", False))
    await asyncio.wait_for(asyncio.gather(fetch, *catalogue), 5)
    assert order.index("orders") <= 3  # only what the catalogue took before the fetch was queued
    assert order[order.index("orders") + 1 :] == [
        f"catalogue-{n}" for n in range(order.index("orders"), 6)
    ]
    # With the bucket drained by the catalogue, a spare token is still there for an order fetch.
    while bucket.delay(spare=1) == 0:
        await bucket.acquire(background=True)
    before = len(fake.slept)
    await bucket.acquire()
    assert len(fake.slept) == before
