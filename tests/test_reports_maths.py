"""Report figures against a small data set computed by hand (see the comments)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from kds.model import ItemEndpoint, Order, OrderItem, OrderStatus, Plu, Quantity, StatusChange
from kds.reports import build_report, facts_of, p90, report_csv, summed

S = OrderStatus


def at(hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(2026, 12, 1, h, m, s, tzinfo=UTC)


def item(item_id: int, name: str, endpoint: str, *history: tuple[OrderStatus, str]) -> OrderItem:
    changes = [StatusChange(status, at(when)) for status, when in history]
    return OrderItem(
        id=item_id,
        plu=Plu(name=name, code=name[:2].upper()),
        quantity=Quantity(amount=Decimal(1)),
        endpoints=[ItemEndpoint.build(endpoint, changes[-1].status, changes)],
    )


def order(order_id: str, *items: OrderItem) -> Order:
    start = min(e.status_changes[0].date for i in items for e in i.endpoints)
    return Order(
        id=order_id,
        number=1,
        source="native",
        external_id=order_id,
        items=list(items),
        created_at=start,
        updated_at=start,
    )


def made(name: str, endpoint: str, item_id: int, start: str, done: str) -> OrderItem:
    return item(
        item_id,
        name,
        endpoint,
        (S.CREATED, start),
        (S.SENT, start),
        (S.DELIVERED, start),
        (S.ACCEPTED, start),
        (S.PROCESSED, done),
    )


ORDERS = [
    # A, grill: burger 5:00, fries 8:00 → ticket 480 s (not late at 600 s).
    order(
        "A",
        made("burger", "grill", 1, "12:00:00", "12:05:00"),
        made("fries", "grill", 2, "12:00:00", "12:08:00"),
    ),
    # B, grill: burger 12:00 → 720 s, late; the salad refused (a refusal, still an item).
    order(
        "B",
        made("burger", "grill", 1, "12:30:00", "12:42:00"),
        item(
            2,
            "salad",
            "grill",
            (S.CREATED, "12:30:00"),
            (S.SENT, "12:30:00"),
            (S.DELIVERED, "12:30:00"),
            (S.REFUSED, "12:31:00"),
        ),
    ),
    # C, grill: a printer failure, bumped at 13:14, recalled, bumped again 13:20 → 600 s (late).
    order(
        "C",
        item(
            1,
            "burger",
            "grill",
            (S.CREATED, "13:10:00"),
            (S.FAILED, "13:10:05"),
            (S.SENT, "13:10:30"),
            (S.DELIVERED, "13:10:31"),
            (S.ACCEPTED, "13:11:00"),
            (S.PROCESSED, "13:14:00"),
            (S.ACCEPTED, "13:15:00"),
            (S.PROCESSED, "13:20:00"),
        ),
    ),
    # D, bar: beer 60 s; the cola cancelled (not counted).
    order(
        "D",
        made("beer", "bar", 1, "12:15:00", "12:16:00"),
        item(2, "cola", "bar", (S.CREATED, "12:15:00"), (S.PROCESS_SKIPPED, "12:15:30")),
    ),
    # E, bar: still open — a ticket with an item, but no time yet.
    order(
        "E",
        item(1, "beer", "bar", (S.CREATED, "12:50:00"), (S.SENT, "12:50:00")),
    ),
]


def report() -> dict:
    tickets, products = [], []
    for o in ORDERS:
        t, p = facts_of(o)
        tickets += t
        products += p
    return build_report(tickets, products, late_after={"grill": 600, "bar": 300}, tz=UTC)


def test_station_figures() -> None:
    # grill: times 480, 720, 600 → avg 600, p90 = 3rd of 3 = 720; late 720 and 600.
    # bar: one bumped ticket of 60 s; E is counted as a ticket but has no time.
    grill, bar = (
        {k: v for k, v in s.items()}
        for s in sorted(report()["stations"], key=lambda s: s["endpoint"] != "grill")
    )
    assert grill == {
        "endpoint": "grill",
        "tickets": 3,
        "items": 5,
        "bumped": 3,
        "avgSeconds": 600.0,
        "p90Seconds": 720.0,
        "late": 2,
        "refusals": 1,
        "recalls": 1,
        "printerFailures": 1,
    }
    assert bar == {
        "endpoint": "bar",
        "tickets": 2,
        "items": 2,
        "bumped": 1,
        "avgSeconds": 60.0,
        "p90Seconds": 60.0,
        "late": 0,
        "refusals": 0,
        "recalls": 0,
        "printerFailures": 0,
    }


def test_hourly_figures() -> None:
    # grill 12:00 holds A and B (480, 720: p90 = 2nd of 2); 13:00 holds C.
    hours = {(h["endpoint"], h["hour"]): h for h in report()["hours"]}
    assert sorted(hours) == [
        ("bar", "2026-12-01T12:00:00+00:00"),
        ("grill", "2026-12-01T12:00:00+00:00"),
        ("grill", "2026-12-01T13:00:00+00:00"),
    ]
    noon = hours[("grill", "2026-12-01T12:00:00+00:00")]
    assert (
        noon["tickets"],
        noon["items"],
        noon["avgSeconds"],
        noon["p90Seconds"],
        noon["late"],
    ) == (
        2,
        4,
        600.0,
        720.0,
        1,
    )
    one = hours[("grill", "2026-12-01T13:00:00+00:00")]
    assert (one["tickets"], one["avgSeconds"], one["late"], one["recalls"]) == (1, 600.0, 1, 1)


def test_totals_and_products() -> None:
    # total: times 480, 720, 600, 60 → avg 465, p90 = 4th of 4 = 720.
    body = report()
    assert body["total"]["tickets"] == 5
    assert body["total"]["avgSeconds"] == 465.0
    assert body["total"]["p90Seconds"] == 720.0
    assert body["total"]["late"] == 2
    # burger: 300 + 720 + 600 (C from arrival to its last bump) = 1620 / 3 = 540.
    assert body["products"] == [
        {"product": "burger", "code": "BU", "items": 3, "avgPrepSeconds": 540.0},
        {"product": "beer", "code": "BE", "items": 1, "avgPrepSeconds": 60.0},
        {"product": "fries", "code": "FR", "items": 1, "avgPrepSeconds": 480.0},
    ]


def test_p90_nearest_rank() -> None:
    assert p90([5]) == 5
    assert p90(range(1, 11)) == 9
    assert p90(range(1, 12)) == 10


def test_csv_has_every_section_and_defuses_formulas() -> None:
    body = report()
    body["products"].append(
        {"product": "=HYPERLINK(1)", "code": None, "items": 1, "avgPrepSeconds": 1.0}
    )
    text = report_csv(body)
    lines = text.splitlines()
    assert lines[0].startswith("section,endpoint,hour,product")
    assert [line.split(",")[0] for line in lines[1:]].count("station") == 2
    assert "'=HYPERLINK(1)" in text


def test_archived_sums_give_the_same_report() -> None:
    # Guarantees: orders summed per station-hour (as the store keeps archived ones) and orders
    # counted one by one make the same report, also when some are live and some archived.
    tickets, products = [], []
    for o in ORDERS:
        t, p = facts_of(o)
        tickets += t
        products += p
    live, old = tickets[:2], tickets[2:]
    totals, times = summed(old, UTC)
    mixed = build_report(
        live,
        products,
        late_after={"grill": 600, "bar": 300},
        tz=UTC,
        archived=totals,
        archived_times=times,
    )
    assert mixed == report()
