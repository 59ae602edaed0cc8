"""Keyed locks (kds.locks): one holder per key, waiters in turn, nothing kept after use.

Every ingest and status change holds one, so the uncontended case takes no
asyncio.Lock; these tests hold the contended cases to the same rules.
"""

from __future__ import annotations

import asyncio

import pytest

from kds.locks import KeyedLocks

#: A bound on waiting for a condition (never a sleep a test relies on).
TIMEOUT = 5


async def test_one_holder_per_key_in_arrival_order() -> None:
    locks = KeyedLocks()
    inside: list[int] = []
    order: list[int] = []
    release = asyncio.Event()

    async def worker(n: int) -> None:
        async with locks.hold("k"):
            inside.append(n)
            assert len(inside) == 1, inside
            order.append(n)
            if n == 0:
                await release.wait()
            await asyncio.sleep(0)  # let the others run while this one holds the key
            inside.remove(n)

    tasks = [asyncio.create_task(worker(n)) for n in range(5)]
    await asyncio.sleep(0)
    assert order == [0]
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert order == [0, 1, 2, 3, 4]
    assert not locks._locks, "a key was kept after its last holder"


async def test_other_keys_do_not_wait() -> None:
    locks = KeyedLocks()
    async with locks.hold(("native", "a")):
        async with locks.hold(("native", "b")):
            assert len(locks._locks) == 2
    assert not locks._locks


async def test_a_failure_inside_releases_the_key() -> None:
    locks = KeyedLocks()
    with pytest.raises(ValueError):
        async with locks.hold("k"):
            raise ValueError("boom")
    async with locks.hold("k"):
        pass
    assert not locks._locks


@pytest.mark.parametrize(
    "steps",
    [
        # cancelled while waiting: it gives up its turn
        ("cancel", "first ends", "holder leaves"),
        # the holder hands it the key, and it is cancelled before it runs: it passes the key on
        ("holder leaves", "cancel", "first ends"),
        # cancelled, and the holder leaves before the cancelled task has run: its turn is skipped
        ("cancel", "holder leaves", "first ends"),
    ],
)
async def test_a_cancelled_waiter_neither_holds_nor_blocks_the_key(steps: tuple[str, ...]) -> None:
    locks = KeyedLocks()
    entered: list[str] = []

    async def worker(name: str) -> None:
        async with locks.hold("k"):
            entered.append(name)

    held = locks.hold("k")
    await held.__aenter__()
    first = asyncio.create_task(worker("first"))
    second = asyncio.create_task(worker("second"))
    await asyncio.sleep(0)  # both wait now
    for step in steps:
        if step == "cancel":
            first.cancel()
        elif step == "holder leaves":
            await held.__aexit__(None, None, None)
        else:
            with pytest.raises(asyncio.CancelledError):
                await first
    await asyncio.wait_for(second, TIMEOUT)
    assert entered == ["second"]
    assert not locks._locks
