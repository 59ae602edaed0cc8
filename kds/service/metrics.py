"""Prometheus metrics of the service core."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Metric

#: The source of orders posted to the native API without one; and the label of unknown sources.
NATIVE_SOURCE = "native"
OTHER_SOURCE = "other"


class ServiceMetrics:
    """Prometheus metrics of the core.

    The counters run per order and per status change, and a prometheus `inc` takes a lock:
    counts are added to plain integers here and handed to the counters when /metrics is
    scraped (the registry collects through this object).
    """

    def __init__(self, registry: CollectorRegistry, sources: Iterable[str] = ()) -> None:
        # Labels only for sources kds knows: a client-chosen `source` must not mint series.
        self.sources = frozenset(sources) | {NATIVE_SOURCE}
        self.ingested = Counter(
            "kds_orders_ingested", "Orders stored, by source", ["source"], registry=None
        )
        self.repeats = Counter(
            "kds_orders_repeated", "Idempotent repeats of stored orders", ["source"], registry=None
        )
        self.changes = Counter(
            "kds_status_changes", "Item endpoint status changes", ["status"], registry=None
        )
        self._counters = (self.ingested, self.repeats, self.changes)
        self._children: dict[tuple[str, str], Any] = {}
        #: Counts not yet added to their counter's child, by (counter, label).
        self._pending: dict[tuple[str, str], int] = {}
        registry.register(self)
        self.open_orders = Gauge(
            "kds_open_orders", "Orders with an item endpoint not final", registry=registry
        )

    def count(self, counter: str, label: str, amount: int = 1) -> None:
        """Add `amount` to `counter` for `label` (a plain integer: this runs per order)."""
        if counter != "changes" and label not in self.sources:
            label = OTHER_SOURCE
        key = (counter, label)
        pending = self._pending
        try:
            pending[key] += amount
        except KeyError:
            if key not in self._children:
                # Made at the first count, as `inc` would: the series' `_created` time.
                self._children[key] = getattr(self, counter).labels(label)
            pending[key] = amount

    def collect(self) -> Iterator[Metric]:
        """The counters with every count so far (the registry calls this at each scrape)."""
        pending, self._pending = self._pending, {}
        for key, amount in pending.items():
            self._children[key].inc(amount)
        for counter in self._counters:
            yield from counter.collect()

    def describe(self) -> Iterator[Metric]:
        """The counters' names, for the registry's check of duplicates."""
        for counter in self._counters:
            yield from counter.describe()
