"""Which new items of a table become one kitchen ticket.

New items wait (`HeldItem`) for `group_window`; then a table's held items are
split into tickets: items of one order group, or created within the window of
each other, stay together.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..coerce import as_datetime, as_int


@dataclass
class HeldItem:
    """A new item waiting for the rest of its table's order."""

    data: dict[str, Any]
    since: float
    inbox_ids: set[int] = field(default_factory=set)


def _created_at(item: dict[str, Any]) -> Any:
    return as_datetime(item.get("order_created_at"))


def group_items(items: list[dict[str, Any]], window: float) -> list[list[dict[str, Any]]]:
    """Split one table's new items into kitchen tickets.

    Items stay together when they share an order group or were created within
    `window` seconds of each other (transitively); items without a creation
    time join the first ticket.
    """
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    by_group: dict[Any, int] = {}
    for i, item in enumerate(items):
        group = item.get("order_group")
        if group is not None:
            if group in by_group:
                union(i, by_group[group])
            else:
                by_group[group] = i
    timed = sorted((t, i) for i, item in enumerate(items) if (t := _created_at(item)) is not None)
    for (t1, a), (t2, b) in itertools.pairwise(timed):
        if (t2 - t1).total_seconds() <= window:
            union(a, b)
    untimed = [i for i, item in enumerate(items) if _created_at(item) is None]
    for i in untimed[1:]:
        union(i, untimed[0])
    if untimed and timed:
        union(untimed[0], timed[0][1])
    clusters: dict[int, list[dict[str, Any]]] = {}
    for i, item in enumerate(items):
        clusters.setdefault(find(i), []).append(item)
    return sorted(clusters.values(), key=lambda c: min(as_int(i.get("order_id")) or 0 for i in c))
