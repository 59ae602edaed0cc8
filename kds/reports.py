"""Kitchen reports: the figures of `GET /api/v1/reports`, computed from facts.

A *ticket fact* is one order at one station: when it arrived, when it was
bumped (the last item processed there), how many items, refusals, recalls and
printer failures it had. An *item fact* is one item's prep time at a station.
`facts_of(order)` derives both from an order's audit history; the archiver
stores them (`report_tickets`, `report_products` summed per hour) when it archives an order, so a
report over 100,000 archived orders reads narrow rows instead of parsing each
order again, and live orders are derived on the fly.

`build_report` aggregates per station, per station and hour, and per product.
Times are seconds from arrival to bump; p90 is the nearest-rank 90th
percentile (the smallest time at least 90 % of tickets did not exceed); a
ticket is late when its time reaches the station's `timers.late_after`.

No I/O here.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from .model import Order, OrderStatus

S = OrderStatus


@dataclass(frozen=True, slots=True)
class TicketFact:
    """One order at one station, as the report counts it."""

    order_id: str
    endpoint: str
    arrived_at: datetime
    seconds: float | None  # arrival to bump; None when never bumped (refused, cancelled)
    items: int
    refusals: int = 0
    recalls: int = 0
    printer_failures: int = 0


@dataclass(frozen=True, slots=True)
class ProductTotal:
    """Prep times of one product at one station: how many items and their summed seconds."""

    endpoint: str
    product: str
    code: str | None
    items: int
    seconds: float
    arrived_at: datetime | None = None  # per item (facts_of); None for summed rows


@dataclass(frozen=True, slots=True)
class StationHour:
    """Archived tickets of one station in one hour, summed by the store (no times: see below)."""

    endpoint: str
    hour: str  # ISO 8601 start of the hour, with the zone's offset (as `hour_of` writes it)
    tickets: int
    items: int
    refusals: int
    recalls: int
    printer_failures: int


@dataclass
class ReportData:
    """What a report is built from: live facts one by one, archived ones summed by the store."""

    tickets: list[TicketFact] = field(default_factory=list)
    products: list[ProductTotal] = field(default_factory=list)
    archived: list[StationHour] = field(default_factory=list)
    archived_times: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class Figures:
    """The figures of one group of tickets (a station, or a station in one hour)."""

    tickets: int = 0
    items: int = 0
    late: int = 0
    refusals: int = 0
    recalls: int = 0
    printer_failures: int = 0
    times: list[float] = field(default_factory=list)

    def add(self, fact: TicketFact, late_after: float) -> None:
        """Count one ticket."""
        self.tickets += 1
        self.items += fact.items
        self.refusals += fact.refusals
        self.recalls += fact.recalls
        self.printer_failures += fact.printer_failures
        if fact.seconds is not None:
            self.add_time(fact.seconds, late_after)

    def add_totals(self, totals: StationHour) -> None:
        """Count the archived tickets of a station-hour (their times come through `add_time`)."""
        self.tickets += totals.tickets
        self.items += totals.items
        self.refusals += totals.refusals
        self.recalls += totals.recalls
        self.printer_failures += totals.printer_failures

    def add_time(self, seconds: float, late_after: float) -> None:
        """One bumped ticket's time from arrival to bump."""
        self.times.append(seconds)
        self.late += seconds >= late_after

    def to_wire(self) -> dict[str, Any]:
        """The JSON of these figures (times in seconds, rounded to 0.1 s)."""
        return {
            "tickets": self.tickets,
            "items": self.items,
            "bumped": len(self.times),
            "avgSeconds": _round(sum(self.times) / len(self.times)) if self.times else None,
            "p90Seconds": _round(p90(self.times)) if self.times else None,
            "late": self.late,
            "refusals": self.refusals,
            "recalls": self.recalls,
            "printerFailures": self.printer_failures,
        }


def p90(values: Iterable[float]) -> float:
    """Nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest value."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _round(seconds: float) -> float:
    return round(seconds, 1)


# --------------------------------------------------------------------------- facts


def facts_of(order: Order) -> tuple[list[TicketFact], list[ProductTotal]]:
    """The ticket facts (one per station) and per-item prep times of an order."""
    tickets: list[TicketFact] = []
    products: list[ProductTotal] = []
    for endpoint in order.endpoint_names():
        arrived: datetime | None = None
        bumped: datetime | None = None
        items = refusals = recalls = 0
        failures: set[datetime] = set()
        open_items = False
        for item in order.items:
            ep = item.endpoint(endpoint)
            if ep is None or not ep.status_changes:
                continue
            first = ep.status_changes[0].date
            arrived = first if arrived is None else min(arrived, first)
            previous = None
            processed_at = None
            for change in ep.status_changes:
                if change.status is S.FAILED:
                    failures.add(change.date)
                elif change.status is S.REFUSED:
                    refusals += 1
                elif change.status is S.ACCEPTED and previous is S.PROCESSED:
                    recalls += 1
                if change.status is S.PROCESSED:
                    processed_at = change.date
                elif change.status is not S.PROCESSED and previous is S.PROCESSED:
                    processed_at = None  # recalled: done again later, or not at all
                previous = change.status
            if ep.status is S.PROCESS_SKIPPED:
                continue  # cancelled, moved away or inactive: not made here
            items += 1
            if ep.status is S.PROCESSED and processed_at is not None:
                bumped = processed_at if bumped is None else max(bumped, processed_at)
                products.append(
                    ProductTotal(
                        endpoint,
                        item.plu.name,
                        None if item.plu.code is None else str(item.plu.code),
                        1,
                        (processed_at - first).total_seconds(),
                        first,
                    )
                )
            elif ep.status is not S.REFUSED:
                open_items = True
        if arrived is None or (items == 0 and refusals == 0):
            continue
        seconds = (
            None if bumped is None or open_items else max((bumped - arrived).total_seconds(), 0)
        )
        tickets.append(
            TicketFact(
                order.id, endpoint, arrived, seconds, items, refusals, recalls, len(failures)
            )
        )
    return tickets, products


# --------------------------------------------------------------------------- report


def summed(
    facts: Iterable[TicketFact], tz: tzinfo | None = None
) -> tuple[list[StationHour], list[tuple[str, str, float]]]:
    """Facts summed per station-hour, as the store sums archived ones (for tests and checks)."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    times = []
    for f in facts:
        hour = hour_of(f.arrived_at, tz)
        g = groups[(f.endpoint, hour)]
        for i, value in enumerate((1, f.items, f.refusals, f.recalls, f.printer_failures)):
            g[i] += value
        if f.seconds is not None:
            times.append((f.endpoint, hour, f.seconds))
    return [StationHour(e, h, *g) for (e, h), g in groups.items()], times


def hour_of(when: datetime, tz: tzinfo | None) -> str:
    """The (UTC) hour a time falls in, as ISO 8601 in `tz` (the server's zone when None)."""
    start = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.astimezone(tz).isoformat()


def build_report(
    tickets: Iterable[TicketFact],
    products: Iterable[ProductTotal],
    *,
    late_after: Mapping[str, float],
    tz: tzinfo | None = None,
    default_late_after: float = 600.0,
    archived: Iterable[StationHour] = (),
    archived_times: Iterable[tuple[str, str, float]] = (),
) -> dict[str, Any]:
    """Per station, per station and hour, and per product: the report's JSON body.

    `tickets` are facts one by one (live orders); `archived` and `archived_times`
    (endpoint, hour, seconds of each bumped ticket) are what the store summed, so a
    report over 100,000 archived orders builds no object per ticket.
    """
    stations: dict[str, Figures] = defaultdict(Figures)
    hours: dict[tuple[str, str], Figures] = defaultdict(Figures)
    total = Figures()
    for fact in tickets:
        limit = late_after.get(fact.endpoint, default_late_after)
        stations[fact.endpoint].add(fact, limit)
        hours[(fact.endpoint, hour_of(fact.arrived_at, tz))].add(fact, limit)
        total.add(fact, limit)
    for totals in archived:
        for figures in (stations[totals.endpoint], hours[(totals.endpoint, totals.hour)], total):
            figures.add_totals(totals)
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for endpoint, hour, seconds in archived_times:
        grouped[(endpoint, hour)].append(seconds)
    for (endpoint, hour), times in grouped.items():
        limit = late_after.get(endpoint, default_late_after)
        late = sum(1 for seconds in times if seconds >= limit)
        for figures in (stations[endpoint], hours[(endpoint, hour)], total):
            figures.times += times
            figures.late += late
    summed: dict[tuple[str, str | None], list[float]] = defaultdict(lambda: [0, 0.0])
    for p in products:
        entry = summed[(p.product, p.code)]
        entry[0] += p.items
        entry[1] += p.seconds
    return {
        "total": total.to_wire(),
        "stations": [{"endpoint": name, **stations[name].to_wire()} for name in sorted(stations)],
        "hours": [
            {"endpoint": name, "hour": hour, **hours[(name, hour)].to_wire()}
            for name, hour in sorted(hours)
        ],
        "products": [
            {
                "product": product,
                "code": code,
                "items": int(n),
                "avgPrepSeconds": _round(seconds / n),
            }
            for (product, code), (n, seconds) in sorted(
                summed.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1] or "")
            )
        ],
    }


CSV_COLUMNS = (
    "section",
    "endpoint",
    "hour",
    "product",
    "code",
    "tickets",
    "items",
    "bumped",
    "avgSeconds",
    "p90Seconds",
    "late",
    "refusals",
    "recalls",
    "printerFailures",
    "avgPrepSeconds",
)


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as one CSV table; `section` says which part a row belongs to."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerow({"section": "total", **report["total"]})
    for section, rows in (("station", "stations"), ("hour", "hours"), ("product", "products")):
        for row in report[rows]:
            writer.writerow({"section": section, **{k: _cell(v) for k, v in row.items()}})
    return out.getvalue()


def _cell(value: Any) -> Any:
    """POS text that a spreadsheet would run as a formula ("=cmd|...") starts with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
