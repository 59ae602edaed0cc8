"""In-process event fan-out with sequence numbers that survive restarts.

Each committed change is published once as an `Event`; its JSON is encoded
once and shared by every websocket. The last `history` events are kept so a
screen that reconnects with `since=SEQ` gets exactly what it missed.

Sequence numbers are handed out in blocks reserved in the store (hi/lo): on
start the bus reserves a block past anything issued before, so a number is
never reused after a crash, and a screen that saw seq 900 of the last run
cannot mistake seq 900 of this run for an event it already has.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import structlog

from .model import compact_json
from .store import OrderStore
from .tasks import TaskSupervisor

log = structlog.get_logger(__name__)

SEQ_BLOCK = 100_000
_SEQ_KEY = "bus.seq_reserved"


class Event(NamedTuple):
    """A published change: `type` like `order.created`, its seq and its JSON.

    `endpoints` names the order endpoints an order event concerns (None: everyone).
    Immutable (every screen shares it) and a tuple: a frozen dataclass took a fifth of a
    new order's publishing to build.
    """

    seq: int
    type: str
    data: dict[str, Any]
    #: The JSON as UTF-8, encoded once for every screen (the history keeps only this).
    payload: bytes
    endpoints: frozenset[str] | None = None

    def __repr__(self) -> str:
        return (
            f"Event(seq={self.seq}, type={self.type!r}, data={self.data!r}, "
            f"endpoints={self.endpoints!r})"
        )

    @property
    def json(self) -> str:
        """The event's JSON text."""
        return self.payload.decode()


#: `Event(seq, type, data, payload, endpoints)` without the Python frame of a NamedTuple's
#: `__new__` (one an event).
_event = functools.partial(tuple.__new__, Event)

Subscriber = Callable[[Event], None]


@functools.lru_cache(maxsize=64)
def _type_json(type_: str) -> str:
    """An event type as JSON text (a few names, all kds's own)."""
    return compact_json(type_)


class EventBus:
    """Numbers, remembers and fans out events to synchronous subscribers."""

    name = "bus"

    def __init__(self, store: OrderStore, supervisor: TaskSupervisor, history: int = 1000) -> None:
        self._store = store
        #: Runs the reservation of the next block of sequence numbers.
        self._supervisor = supervisor
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: list[Subscriber] = []
        self._seq = 0
        self._reserved = 0
        self._reserving = False
        self.published = 0

    async def start(self) -> None:
        """Continue numbering past everything a previous run may have issued."""
        reserved = int(await self._store.meta(_SEQ_KEY) or 0)
        self._seq = reserved
        await self._reserve()

    async def stop(self) -> None:
        """Nothing to release."""

    def health(self) -> dict[str, Any]:
        return {"ok": True, "seq": self._seq, "subscribers": len(self._subscribers)}

    async def _reserve(self) -> None:
        self._reserving = True
        try:
            target = self._seq + SEQ_BLOCK
            await self._store.set_meta(_SEQ_KEY, str(target))
            self._reserved = target
        finally:
            self._reserving = False

    @property
    def seq(self) -> int:
        """The seq of the last published event."""
        return self._seq

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(event)` for each event; returns an unsubscribe function."""
        self._subscribers.append(subscriber)
        return lambda: (
            self._subscribers.remove(subscriber) if subscriber in self._subscribers else None
        )

    def publish(
        self,
        type_: str,
        data: dict[str, Any] | None = None,
        *,
        encoded: dict[str, str] | None = None,
        endpoints: frozenset[str] | None = None,
    ) -> Event:
        """Number, remember and fan out one event.

        `data` is encoded here; `encoded` holds fields already encoded as JSON
        (an order's JSON is made once and reused, not encoded again).
        """
        seq = self._seq = self._seq + 1
        if data:
            parts = [compact_json({"type": type_, "seq": seq, **data})[:-1]]
        else:  # most events (an order's JSON is `encoded`): no dict to encode
            data = {}
            parts = [f'{{"type":{_type_json(type_)},"seq":{seq}']
        if encoded:
            for key, value in encoded.items():
                parts += (',"', key, '":', value)  # an order's JSON is copied once, here
        parts.append("}")
        event: Event = _event((seq, type_, data, "".join(parts).encode(), endpoints))
        self._deliver(event)
        if seq >= self._reserved - SEQ_BLOCK // 2 and not self._reserving:
            self._schedule_reserve()
        return event

    def _deliver(self, event: Event) -> None:
        """Remember a numbered event and hand it to every subscriber."""
        self._history.append(event)
        self.published += 1
        if not self._subscribers:
            return
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("bus.subscriber_failed", event=event.type)

    def _schedule_reserve(self) -> None:
        self._reserving = True
        self._supervisor.spawn("bus:reserve", self._reserve())

    def since(self, seq: int) -> list[Event] | None:
        """Events after `seq`, or None when they are no longer all remembered."""
        if seq > self._seq:
            return None  # a seq from the future: not ours, resync
        if seq == self._seq:
            return []
        if not self._history or self._history[0].seq > seq + 1:
            return None
        return [e for e in self._history if e.seq > seq]
