"""Keyed asyncio locks: one writer per order (or inbox key) at a time."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

#: A key held and waited for by nobody else (no queue made for it).
_NO_WAITERS = None


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it.

    `async with locks.hold(key):` — it runs for every order and every status change, and
    almost always nobody else holds the key: that case makes no `asyncio.Lock` (its making,
    acquiring and releasing cost as much as the rest of the glue of a request). A key is held
    while it is in `_locks`; its waiters queue there and the leaving holder hands the key
    to the first of them (first come, first served).
    """

    def __init__(self) -> None:
        self._locks: dict[Any, deque[asyncio.Future[None]] | None] = {}

    def hold(self, key: Any) -> _Held:
        """An async context manager holding the lock of `key`."""
        return _Held(self, key)


class _Held:
    __slots__ = ("_key", "_owner")

    def __init__(self, owner: KeyedLocks, key: Any) -> None:
        self._owner, self._key = owner, key

    async def __aenter__(self) -> None:
        locks = self._owner._locks
        key = self._key
        if key not in locks:
            locks[key] = _NO_WAITERS
            return
        waiters = locks[key]
        if waiters is None:
            waiters = locks[key] = deque()
        turn = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()  # handed the key, then cancelled before running: pass it on
            elif turn in waiters:
                waiters.remove(turn)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        locks = self._owner._locks
        waiters = locks[self._key]
        while waiters:
            turn = waiters.popleft()
            if not turn.done():  # a cancelled waiter's turn is skipped
                turn.set_result(None)  # the key stays held: it is the waiter's now
                return
        del locks[self._key]
