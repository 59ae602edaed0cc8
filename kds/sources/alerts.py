"""Source alerts: problems with a POS that staff must see (one registry for every source).

A source raises an alert when something it cannot fix by retrying needs a
person: a write-back the POS refused, an order it cannot read, a line it could
not apply. Alerts are keyed per source, so raising the same one again only
updates it and clearing it removes it. Every change is published on the bus as
`source.alerts` (the whole list: screens replace theirs) and the list is part
of each websocket snapshot and of the source's `/readyz` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from ..contracts import EventType
from ..model import utcnow

if TYPE_CHECKING:
    from ..bus import EventBus

log = structlog.get_logger(__name__)

#: Alerts kept per source at most (a flood of unreadable orders must not grow memory).
MAX_PER_SOURCE = 100


@dataclass
class SourceAlert:
    """One problem of one source."""

    source: str
    key: str
    kind: str  # writeback_refused | order_unreadable | line_unapplied | ...
    message: str
    order: str | None = None
    since: datetime = field(default_factory=utcnow)
    count: int = 1

    def to_wire(self) -> dict[str, Any]:
        """JSON for /readyz and the live feed."""
        return {
            "source": self.source,
            "key": self.key,
            "kind": self.kind,
            "message": self.message,
            "order": self.order,
            "since": self.since.isoformat(),
            "count": self.count,
        }


def summary(alerts: list[dict[str, Any]]) -> str:
    """The first few alerts' messages in one line (a source's health `reason`)."""
    return "; ".join(a["message"] for a in alerts[:3])


class SourceAlerts:
    """The alerts of every source, published on change."""

    def __init__(self, bus: EventBus | None) -> None:
        self._bus = bus
        self._alerts: dict[str, dict[str, SourceAlert]] = {}

    def raise_alert(
        self, source: str, key: str, kind: str, message: str, *, order: str | None = None
    ) -> None:
        """Show (or update) an alert; logged once when it first appears."""
        alerts = self._alerts.setdefault(source, {})
        known = alerts.get(key)
        if known is not None:
            if known.message == message and known.order == order:
                known.count += 1
                return
            known.message, known.order, known.kind = message, order, kind
            known.count += 1
        else:
            if len(alerts) >= MAX_PER_SOURCE:
                alerts.pop(next(iter(alerts)))
            alerts[key] = SourceAlert(source, key, kind, message, order)
            log.warning("source.alert", source=source, kind=kind, order=order, message=message)
        self._publish()

    def clear(self, source: str, key: str) -> None:
        """The problem is gone."""
        alerts = self._alerts.get(source, {})
        if alerts.pop(key, None) is not None:
            log.info("source.alert_cleared", source=source, key=key)
            self._publish()

    def clear_where(self, source: str, kind: str, keep: set[str]) -> None:
        """Clear the source's alerts of `kind` whose key is not in `keep`."""
        alerts = self._alerts.get(source, {})
        gone = [k for k, a in alerts.items() if a.kind == kind and k not in keep]
        for key in gone:
            alerts.pop(key)
        if gone:
            log.info("source.alerts_cleared", source=source, kind=kind, count=len(gone))
            self._publish()

    def of(self, source: str) -> list[dict[str, Any]]:
        """The alerts of one source (for its /readyz entry)."""
        return [a.to_wire() for a in self._alerts.get(source, {}).values()]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every alert (for websocket snapshots)."""
        return [a.to_wire() for alerts in self._alerts.values() for a in alerts.values()]

    def _publish(self) -> None:
        if self._bus is None:
            return
        try:
            self._bus.publish(EventType.SOURCE_ALERTS, {"alerts": self.snapshot()})
        except Exception:
            log.exception("source.alerts_publish_failed")
