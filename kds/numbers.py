"""Pickup numbers: the short number a cook calls and a customer watches for.

kds numbers every order itself, whichever POS it came from (two tills both
sending "#5" must not put two #5 tickets on one screen); the POS's own number
stays on the order as `posNumber`. Numbers count up from 1 to `[ui]
max_pickup_number` and start again at 1, skipping every number still held: an
order holds its number while it is open, and after it is finished for as long
as the pickup board shows it as ready or a cook may recall it. Only when every
number of the range is held (a benchmark, not a kitchen) does kds count on past
the range rather than hand out a number twice.

One node keeps its cursor in memory and reserves blocks of it durably
(`NumberReservations`). Several nodes on one PostgreSQL database share the
cursor in the database instead (`SharedNumbers`): the orders waiting for a
number claim theirs together with one atomic update, so two nodes taking
orders at the same moment never get the same number, and each skips the
numbers the other's open orders hold (its view has them). Both are a
`Reservations` to the service.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from .model import Order

#: The meta key of the highest pickup number reserved (and the key older versions used).
NUMBER_KEY = "orders.numbers_reserved"
LEGACY_NEXT_NUMBER_KEY = "orders.next_number"
#: Pickup numbers are reserved in blocks (one meta write per block, not per order).
NUMBER_BLOCK = 100


class PickupNumbers:
    """Hands out pickup numbers; no two orders that still hold a number share it."""

    def __init__(
        self,
        maximum: int,
        hold_after_finish: float,
        lookup: Callable[[str], Order | None],
        finished: Callable[[Order], bool],
    ) -> None:
        self.maximum = maximum
        self.issued = (
            0  # numbers of the range handed out, ever: the cursor is this modulo `maximum`
        )
        self._hold = timedelta(seconds=hold_after_finish)
        self._lookup = lookup
        self._finished = finished
        self._held: dict[int, str] = {}  # number of the range -> id of the order holding it
        self._over: dict[int, str] = {}  # past the range, only while the range is full
        self._next_over = maximum + 1
        # (release time, tiebreak, order id) of finished orders, earliest first.
        self._releases: list[tuple[datetime, int, str]] = []
        self._tiebreak = itertools.count()

    def take(self, order_id: str, now: datetime) -> int:
        """A number no other order holds, held by `order_id` from now on."""
        self._release_due(now)
        if len(self._held) < self.maximum:
            while True:
                self.issued += 1
                number = (self.issued - 1) % self.maximum + 1
                if number not in self._held:
                    self._held[number] = order_id
                    return number
        if not self._over:
            self._next_over = self.maximum + 1
        number, self._next_over = self._next_over, self._next_over + 1
        self._over[number] = order_id
        return number

    def can_take(self, limit: int) -> bool:
        """Whether `take` finds a number before the cursor passes `limit` (or counts past the range)."""
        if len(self._held) >= self.maximum:
            return True
        return any(
            (issued - 1) % self.maximum + 1 not in self._held
            for issued in range(self.issued + 1, limit + 1)
        )

    def holds(self, order: Order, finished: bool) -> None:
        """`order` (loaded from the store) holds its number; queue its release if `finished`
        (the caller looked: `finished(order)`)."""
        (self._held if order.number <= self.maximum else self._over)[order.number] = order.id
        if order.number >= self._next_over:
            self._next_over = order.number + 1
        if finished:
            self._release_later(order)

    def changed(self, order: Order) -> None:
        """Call after every change of `order`: a finished order's number is freed later."""
        if self._finished(order):
            self._release_later(order)

    def _release_later(self, order: Order) -> None:
        """Free the finished `order`'s number once it is no longer shown or recalled."""
        heapq.heappush(
            self._releases, (order.updated_at + self._hold, next(self._tiebreak), order.id)
        )

    def forget(self, order_id: str, number: int) -> None:
        """The order is gone (archived, or its ingest failed): its number is free."""
        for held in (self._held, self._over):
            if held.get(number) == order_id:
                del held[number]

    def _release_due(self, now: datetime) -> None:
        releases = self._releases
        while releases and releases[0][0] <= now:
            _, _, order_id = heapq.heappop(releases)
            order = self._lookup(order_id)
            if order is None:
                continue  # archived: forgotten already
            if not self._finished(order):
                continue  # recalled: open again, its next finish queues a new release
            due = order.updated_at + self._hold
            if due <= now:
                self.forget(order.id, order.number)
            else:  # changed since (a table move): later
                heapq.heappush(releases, (due, next(self._tiebreak), order.id))


class Reservations(Protocol):
    """Where `PickupNumbers` may move its cursor to, kept across restarts and nodes."""

    def resume(self, reserved: str | None, legacy_next: str | None) -> None:
        """Continue after what the store's meta says was reserved."""

    async def ready(self) -> None:
        """Make sure the next `take` has a number it may hand out (call right before it)."""

    def reserve(self, meta: dict[str, str]) -> int | None:
        """Add what the batch must store for the numbers taken to its `meta`."""

    def committed(self, reservation: int | None) -> None:
        """The batch holding `reservation` is durable."""

    def failed(self, reservation: int | None) -> None:
        """The batch holding `reservation` failed."""


class NumberReservations:
    """Pickup numbers reserved durably in blocks: one meta write per block, not per order.

    After a crash the unused rest of a block is skipped, never reused.
    """

    def __init__(self, numbers: PickupNumbers, block: int = NUMBER_BLOCK) -> None:
        self._numbers = numbers
        self._block = block
        self._reserved = 0  # reserved up to here in memory …
        self._durable = 0  # … and in the store

    def resume(self, reserved: str | None, legacy_next: str | None) -> None:
        """Continue after what the store's meta says was reserved."""
        if reserved is not None:
            value = int(reserved)
        else:
            # A database from before numbers were reserved in blocks kept the next number to
            # hand out; continue from it rather than start again at 1 beside the open orders.
            value = int(legacy_next) - 1 if legacy_next is not None else 0
        self._numbers.issued = self._reserved = self._durable = value

    def reserve(self, meta: dict[str, str]) -> int | None:
        """Add a reservation of the next block to a batch's `meta` when issued numbers need one."""
        if self._numbers.issued <= self._reserved:
            return None
        self._reserved = self._numbers.issued + self._block
        meta[NUMBER_KEY] = str(self._reserved)
        return self._reserved

    def committed(self, reservation: int | None) -> None:
        """The batch holding `reservation` is durable."""
        if reservation is not None:
            self._durable = max(self._durable, reservation)

    def failed(self, reservation: int | None) -> None:
        """The batch failed: the next order reserves again."""
        if reservation is not None:
            self._reserved = self._durable

    async def ready(self) -> None:
        """Nothing to wait for: the cursor is this node's own."""


class SharedNumbers:
    """The cursor of several nodes on one database: orders waiting for a number claim together.

    `claim(n)` advances the shared cursor by `n` atomically and returns its new
    value: this node owns the `n` values below it. An order finding no free
    value left in what its node owns claims for every order waiting beside it
    in one statement (the orders arriving meanwhile claim together next). The
    claim is in the database already, so a batch stores nothing; a value
    claimed and never used (a failed ingest, a crash) is skipped.
    """

    def __init__(self, numbers: PickupNumbers, claim: Callable[[int], Awaitable[int]]) -> None:
        self._numbers = numbers
        self._claim = claim
        self._limit = 0  # this node may move the cursor up to here
        self._waiting = 0  # orders in `ready`: the next claim is for all of them
        self._claiming = asyncio.Lock()

    def resume(self, reserved: str | None, legacy_next: str | None) -> None:
        """Nothing to resume: the first order claims from the database."""

    async def ready(self) -> None:
        """Claim from the shared cursor until `take` has a free number (call right before it)."""
        numbers = self._numbers
        self._waiting += 1
        try:
            while not numbers.can_take(self._limit):
                async with self._claiming:
                    if numbers.can_take(self._limit):
                        break  # the claim this order waited behind brought enough
                    count = self._waiting
                    self._limit = await self._claim(count)
                    numbers.issued = self._limit - count
        finally:
            self._waiting -= 1

    def reserve(self, meta: dict[str, str]) -> int | None:
        """Nothing to add to a batch: the claim was written already."""
        return None

    def committed(self, reservation: int | None) -> None:
        """Nothing to note."""

    def failed(self, reservation: int | None) -> None:
        """Nothing to undo: the values claimed stay this node's."""
