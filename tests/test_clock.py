"""The injected clock: a manual clock moves only when told, and fires what falls due in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from kds.clock import Clock, ManualClock, SystemClock, wait_event


async def test_sleepers_wake_in_time_order_only_when_the_clock_advances() -> None:
    # Nothing sleeping on a manual clock wakes by itself; advance() wakes each in time order.
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.monotonic():g}")

    async with asyncio.TaskGroup() as group:
        group.create_task(sleeper("late", 30))
        group.create_task(sleeper("early", 1))
        await clock.waiting(2)
        await asyncio.sleep(0)
        assert woke == []
        await clock.advance(10)
        assert woke == ["early@1"]
        assert clock.monotonic() == 10
        await clock.advance(20)
    assert woke == ["early@1", "late@30"]


async def test_a_loop_advanced_past_several_intervals_ticks_once_per_interval() -> None:
    # A 1 s loop given 5 s ticks five times: each woken sleeper re-arms before time moves on.
    clock = ManualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    async with asyncio.TaskGroup() as group:
        task = group.create_task(ticker())
        await clock.waiting()
        await clock.advance(5)
        task.cancel()
    assert ticks == [1, 2, 3, 4, 5]


async def test_timeout_and_wait_for_expire_on_manual_time() -> None:
    # A manual timeout fires only once the clock passed it, as TimeoutError, like asyncio's.
    clock = ManualClock()
    event = asyncio.Event()

    async def waiter() -> bool:
        return await wait_event(clock, event, 3)

    async with asyncio.TaskGroup() as group:
        waited = group.create_task(waiter())
        await clock.waiting()
        await clock.advance(2.9)
        assert not waited.done()
        await clock.advance(0.2)
    assert waited.result() is False

    event.set()
    assert await wait_event(clock, event, 3) is True
    # A timeout already due expires at once, as asyncio's does (no advance needed).
    assert await wait_event(clock, asyncio.Event(), 0) is False

    start = clock.monotonic()

    async def slow() -> str:
        try:
            await clock.wait_for(clock.sleep(10), 5)
        except TimeoutError:
            return f"timed out after {clock.monotonic() - start:g}"
        return "slept"

    async with asyncio.TaskGroup() as group:
        timed = group.create_task(slow())
        await clock.waiting(2)
        await clock.advance(6)
    assert timed.result() == "timed out after 5"


async def test_call_later_runs_once_when_due_and_not_after_cancel() -> None:
    # Scheduled callbacks run at their time; a cancelled one never runs.
    clock = ManualClock()
    calls: list[str] = []
    clock.call_later(2, lambda: calls.append("a"))
    clock.call_later(1, lambda: calls.append("b")).cancel()
    assert clock.pending == 1
    await clock.advance(5)
    assert calls == ["a"]
    assert clock.pending == 0


def test_wall_time_moves_with_the_manual_clock() -> None:
    # utcnow() is the start's wall time plus the time advanced.
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(wall=start)
    assert clock.utcnow() == start
    asyncio.run(clock.advance(90))
    assert clock.utcnow() == start + timedelta(seconds=90)


async def test_waiting_is_bounded() -> None:
    # A test waiting for a sleeper that never comes fails in bounded (real) time.
    with pytest.raises(TimeoutError):
        await ManualClock().waiting(timeout=0.05)


async def test_the_system_clock_follows_the_loop() -> None:
    # The real clock reads the loop's time and its timeouts are asyncio's.
    clock: Clock = SystemClock()
    assert abs(clock.monotonic() - asyncio.get_running_loop().time()) < 1
    assert abs((clock.utcnow() - datetime.now(UTC)).total_seconds()) < 1
    with pytest.raises(TimeoutError):
        await clock.wait_for(asyncio.Event().wait(), 0)
    fired = asyncio.Event()
    clock.call_later(0, fired.set)
    await asyncio.wait_for(fired.wait(), 5)
