"""Prometheus metrics of the service core."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

#: The source of orders posted to the native API without one; and the label of unknown sources.
NATIVE_SOURCE = "native"
OTHER_SOURCE = "other"


class ServiceMetrics:
    """Prometheus metrics of the core."""

    def __init__(self, registry: CollectorRegistry, sources: Iterable[str] = ()) -> None:
        # Labels only for sources kds knows: a client-chosen `source` must not mint series.
        self.sources = frozenset(sources) | {NATIVE_SOURCE}
        self.ingested = Counter(
            "kds_orders_ingested", "Orders stored, by source", ["source"], registry=registry
        )
        self.repeats = Counter(
            "kds_orders_repeated",
            "Idempotent repeats of stored orders",
            ["source"],
            registry=registry,
        )
        self.changes = Counter(
            "kds_status_changes", "Item endpoint status changes", ["status"], registry=registry
        )
        self.open_orders = Gauge(
            "kds_open_orders", "Orders with an item endpoint not final", registry=registry
        )
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, counter: str, label: str, amount: int = 1) -> None:
        """Add `amount` to `counter` for `label` (children cached: this runs per order)."""
        if counter != "changes" and label not in self.sources:
            label = OTHER_SOURCE
        child = self._children.get((counter, label))
        if child is None:
            child = self._children[(counter, label)] = getattr(self, counter).labels(label)
        child.inc(amount)
