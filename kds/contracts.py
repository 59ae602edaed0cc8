"""The contracts between kds's parts: outbox effect payloads and event types.

Pure (no I/O). The service core produces effects (rows of the outbox) and
events (on the bus, then the websocket); printers, write-backs and screens
consume them. Both sides import the shapes from here, so a field name or an
event name is spelled once. The JSON is the one on the wire and in the
database: `to_dict()` / `from_dict()` keep it exactly as it was.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final


class EffectKind(str, enum.Enum):
    """The `kind` column of an outbox row: which consumer handles it."""

    PRINT = "print"
    WRITEBACK = "writeback"


class TicketKind(str, enum.Enum):
    """What a kitchen ticket says: a new order, a VOID of cancelled items, a TRANSFER, a RUSH."""

    NEW = "new"
    VOID = "void"
    TRANSFER = "transfer"
    RUSH = "rush"  # a short slip: an order already on paper was rushed


class EventType:
    """Names of the events on the bus (and the websocket's `type`)."""

    ORDER_CREATED: Final = "order.created"
    ORDER_UPDATED: Final = "order.updated"
    ORDER_REMOVED: Final = "order.removed"
    PRINTER_STATUS: Final = "printer.status"
    SOURCE_ALERTS: Final = "source.alerts"
    # Sent by the websocket hub itself, never published on the bus.
    SNAPSHOT: Final = "snapshot"
    SNAPSHOT_MORE: Final = "snapshot.more"
    PING: Final = "ping"


@dataclass
class OutboxEntry:
    """One pending side effect: a row of the outbox (`payload` is an effect's `to_dict()`)."""

    id: int
    kind: str  # an EffectKind value
    target: str
    order_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    #: Why the receiver refused it (kept, not re-sent until retried); None while it is pending.
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class PrintEffect:
    """Print a ticket of `order_id` at the outbox row's target endpoint.

    `item_ids` None means every item of the order at that endpoint.
    """

    order_id: str
    ticket: TicketKind
    item_ids: tuple[int, ...] | None
    version: int | None = None
    moved_to: str | None = None  # a TRANSFER of items moved to another station
    moved_from: str | None = None  # a new ticket of items moved here from a station

    def to_dict(self) -> dict[str, Any]:
        """The outbox payload (`movedTo` / `movedFrom` only when set)."""
        payload: dict[str, Any] = {
            "orderId": self.order_id,
            "ticket": self.ticket.value,
            "itemIds": None if self.item_ids is None else list(self.item_ids),
            "version": self.version,
        }
        if self.moved_to is not None:
            payload["movedTo"] = self.moved_to
        if self.moved_from is not None:
            payload["movedFrom"] = self.moved_from
        return payload

    @classmethod
    def from_dict(cls, data: dict[str, Any], order_id: str | None = None) -> PrintEffect:
        """Read a payload; rows from older versions may lack `ticket` (new) or `itemIds` (all).

        Raises ValueError for an unknown ticket kind or malformed item ids.
        """
        item_ids = data.get("itemIds")
        version = data.get("version")
        moved_to, moved_from = data.get("movedTo"), data.get("movedFrom")
        return cls(
            order_id=str(data.get("orderId") or order_id or ""),
            ticket=TicketKind(data.get("ticket", TicketKind.NEW.value)),
            item_ids=None if item_ids is None else tuple(int(i) for i in item_ids),
            version=version if isinstance(version, int) else None,
            moved_to=moved_to if isinstance(moved_to, str) else None,
            moved_from=moved_from if isinstance(moved_from, str) else None,
        )


@dataclass(frozen=True, slots=True)
class WritebackEffect:
    """Report a status change of some items at one endpoint back to the order's POS."""

    order_id: str
    external_id: str
    endpoint: str
    item_ids: tuple[int, ...]
    all_items: bool  # every item of the order at `endpoint`
    status: str  # an OrderStatus value
    date: str  # ISO 8601
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outbox payload."""
        return {
            "orderId": self.order_id,
            "externalId": self.external_id,
            "endpoint": self.endpoint,
            "itemIds": list(self.item_ids),
            "allItems": self.all_items,
            "status": self.status,
            "date": self.date,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], order_id: str | None = None) -> WritebackEffect:
        """Read a payload; missing or mistyped fields become empty values (never raises)."""
        item_ids = data.get("itemIds")
        reason = data.get("reason")
        return cls(
            order_id=str(data.get("orderId") or order_id or ""),
            external_id=str(data.get("externalId") or ""),
            endpoint=str(data.get("endpoint") or ""),
            item_ids=tuple(i for i in item_ids or () if isinstance(i, int)),
            all_items=bool(data.get("allItems")),
            status=str(data.get("status") or ""),
            date=str(data.get("date") or ""),
            reason=reason if isinstance(reason, str) else None,
        )


Effect = PrintEffect | WritebackEffect

#: The outbox kind of each effect class.
EFFECT_KIND: Final[dict[type[Any], EffectKind]] = {
    PrintEffect: EffectKind.PRINT,
    WritebackEffect: EffectKind.WRITEBACK,
}
