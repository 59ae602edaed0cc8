"""Keyed asyncio locks: one writer per order (or inbox key) at a time."""

from __future__ import annotations

import asyncio
from typing import Any


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it.

    `async with locks.hold(key):` — a small class rather than a generator-based
    context manager, because it runs for every order and every status change.
    """

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, list[int]]] = {}

    def hold(self, key: Any) -> _Held:
        """An async context manager holding the lock of `key`."""
        return _Held(self, key)


class _Held:
    __slots__ = ("_entry", "_key", "_owner")

    def __init__(self, owner: KeyedLocks, key: Any) -> None:
        self._owner, self._key = owner, key

    async def __aenter__(self) -> None:
        entry = self._owner._locks.get(self._key)
        if entry is None:
            entry = self._owner._locks[self._key] = (asyncio.Lock(), [0])
        entry[1][0] += 1  # users: holders and waiters
        self._entry = entry
        try:
            await entry[0].acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._entry[0].release()
        self._release_user()

    def _release_user(self) -> None:
        users = self._entry[1]
        users[0] -= 1
        if not users[0]:
            del self._owner._locks[self._key]
