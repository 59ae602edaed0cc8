"""Time, injected: how kds reads the time and waits for it.

Parts that wait on a timer — the printer spooler's retries and probes, the
websocket pinger and watchdog, pollers, kitchen timers — take a `Clock` instead
of calling `asyncio.sleep`, `asyncio.timeout` or `loop.time()` themselves. The
daemon hands every part the same `SystemClock`; a test hands them a
`ManualClock` and moves time on with `await clock.advance(seconds)`, so a 30 s
backoff is tested in microseconds and no test shrinks real intervals to
milliseconds on a busy two-core box.

Timeouts that bound real I/O (connecting to a printer, reading its status, an
HTTP request) stay on the loop's own time: a manual clock must not leave a test
hanging on a dead socket.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Cancellable(Protocol):
    """A scheduled callback that can be called off (like `asyncio.TimerHandle`)."""

    def cancel(self) -> None:
        """Do not run the callback."""


class Clock(Protocol):
    """Monotonic time, wall time, and waiting on them."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""

    def utcnow(self) -> datetime:
        """The current wall time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds`."""

    def timeout(self, seconds: float | None) -> Any:
        """`async with clock.timeout(s):` raises TimeoutError when the body takes longer."""

    async def wait_for(self, aw: Awaitable[T], seconds: float | None) -> T:
        """Await `aw`, or raise TimeoutError after `seconds` (None: no limit)."""

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Cancellable:
        """Run `callback()` (on the loop) after `seconds`."""


async def wait_event(clock: Clock, event: asyncio.Event, seconds: float | None) -> bool:
    """Wait for `event` at most `seconds`; True when it is set."""
    try:
        await clock.wait_for(event.wait(), seconds)
    except TimeoutError:
        return event.is_set()
    return True


class SystemClock:
    """The real clock: the event loop's monotonic time and `datetime.now(UTC)`."""

    def monotonic(self) -> float:
        """The running loop's time (its own monotonic clock)."""
        return asyncio.get_running_loop().time()

    def utcnow(self) -> datetime:
        """`datetime.now(UTC)`."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> Any:
        """`asyncio.timeout`."""
        return asyncio.timeout(seconds)

    async def wait_for(self, aw: Awaitable[T], seconds: float | None) -> T:
        """`asyncio.wait_for`."""
        return await asyncio.wait_for(aw, seconds)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> Cancellable:
        """`loop.call_later`."""
        return asyncio.get_running_loop().call_later(seconds, callback)


class _Timer:
    """One callback due at a manual-clock time."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when a test says so.

    `await advance(seconds)` fires every timer due on the way in time order,
    letting the loop run after each so a woken task can arm its next sleep
    before time moves on (a 1 s pinger advanced by 5 s ticks five times).
    `await waiting(n)` waits (in real time, bounded) until `n` timers are armed,
    e.g. until a printer worker sits in its backoff.
    """

    #: Loop turns given to woken tasks after each timer fires.
    SETTLE_TURNS = 20

    def __init__(self, start: float = 0.0, wall: datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall = wall or datetime.now(UTC)
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()
        self._armed = asyncio.Event()  # set whenever a timer is armed

    def monotonic(self) -> float:
        """The manual time."""
        return self._now

    def utcnow(self) -> datetime:
        """The wall time at construction moved on by the time advanced since."""
        return self._wall + timedelta(seconds=self._now - self._start)

    def call_later(self, seconds: float, callback: Callable[[], object]) -> _Timer:
        """Run `callback()` once the clock has advanced `seconds` from now."""
        timer = _Timer(self._now + max(0.0, seconds), callback)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        self._armed.set()
        return timer

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has advanced `seconds` (at once when <= 0)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await done
        finally:
            timer.cancel()

    @asynccontextmanager
    async def timeout(self, seconds: float | None) -> AsyncIterator[None]:
        """Like `asyncio.timeout`, expiring when the clock has advanced `seconds`."""
        async with asyncio.timeout(None) as scope:
            timer = None
            loop = asyncio.get_running_loop()
            # An expired scope cancels the task and turns that into TimeoutError on exit.
            if seconds is not None and seconds <= 0:
                scope.reschedule(loop.time())  # already due, as with asyncio.timeout(0)
            elif seconds is not None:
                timer = self.call_later(seconds, lambda: scope.reschedule(loop.time()))
            try:
                yield
            finally:
                if timer is not None:
                    timer.cancel()

    async def wait_for(self, aw: Awaitable[T], seconds: float | None) -> T:
        """Await `aw`, or raise TimeoutError once the clock advanced `seconds`."""
        async with self.timeout(seconds):
            return await aw

    @property
    def pending(self) -> int:
        """Timers armed and not yet fired or cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    async def waiting(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait (real time, at most `timeout` s) until at least `count` timers are armed."""
        async with asyncio.timeout(timeout):
            while self.pending < count:
                self._armed.clear()
                await self._armed.wait()

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, firing what falls due on the way, in order."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.callback()
            await self._settle()
        self._now = target
        await self._settle()

    async def _settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)
