"""Group commit, shared by the store backends: queued writes commit together, a bad one alone."""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar


class Pending(Protocol):
    """A queued write: what to commit is the backend's; `done` resolves once it committed."""

    @property
    def done(self) -> asyncio.Future[None]: ...


P = TypeVar("P", bound=Pending)


class GroupCommit(Generic[P]):
    """The writer loop: take what is queued (up to `max_group`), commit it in one transaction.

    A backend gives `_commit_pending` (one transaction for the group, or raise) and `_fail`
    (answer one write that failed alone).
    """

    _queue: asyncio.Queue[P]
    max_group: int
    commits: int
    writes: int
    _healthy: bool
    _last_error: str | None

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit_group(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit_group(self, group: list[P]) -> None:
        try:
            await self._commit_pending(group)
        except Exception as err:
            if len(group) > 1:
                # Isolate: one bad write must not fail the others that shared its transaction.
                for pending in group:
                    await self._commit_group([pending])
                return
            self._fail(group[0], err)
        else:
            self._healthy, self._last_error = True, None
            self.commits += 1
            self.writes += len(group)
            for pending in group:
                if not pending.done.done():
                    pending.done.set_result(None)

    async def _commit_pending(self, group: list[P]) -> None:
        raise NotImplementedError

    def _fail(self, pending: P, err: Exception) -> None:
        raise NotImplementedError
