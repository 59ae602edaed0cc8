"""Allergen, RUSH and move markings on paper, decoded back from the rendered bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kds.model import ItemEndpoint, Order, OrderItem, OrderStatus, Plu, Quantity
from kds.printing.config import PrinterConfig
from kds.printing.render import Ticket, TicketKind, TicketRenderer
from kds.simulators.printer import EscPosDecoder, Line

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


def item(item_id: int, name: str, **extra: Any) -> OrderItem:
    return OrderItem(
        id=item_id,
        plu=Plu(name=name),
        quantity=Quantity(amount=Decimal(1)),
        endpoints=[ItemEndpoint(name="grill", status=OrderStatus.SENT)],
        **extra,
    )


def order(*items: OrderItem, **extra: Any) -> Order:
    return Order(
        id="o1",
        number=42,
        source="native",
        external_id="x1",
        items=list(items),
        created_at=NOW,
        updated_at=NOW,
        **extra,
    )


def lines(ticket_order: Order, **ticket: Any) -> list[Line]:
    config = PrinterConfig(address="127.0.0.1:9100")
    data = TicketRenderer(config, tz=UTC).render(
        Ticket(order=ticket_order, endpoint="grill", job_id=1, **ticket)
    )
    decoder = EscPosDecoder(config.profile)
    decoder.feed(data)
    decoder.finish()
    assert not decoder.unknown
    assert len(decoder.tickets) == 1
    return decoder.tickets[0]


def find(printed: list[Line], text: str) -> int:
    for i, line in enumerate(printed):
        if text in line.text:
            return i
    raise AssertionError(f"{text!r} not in {[line.text for line in printed]}")


def assert_boxed_inverted(printed: list[Line], at: int) -> None:
    # The allergen line is printed in reverse (white on black) inside a drawn box.
    assert printed[at].invert, printed[at]
    assert printed[at].text.startswith("|") and printed[at].text.endswith("|")
    for border in (printed[at - 1], printed[at + 1]):
        assert border.invert and set(border.text) <= {"+", "-"}, border


def test_allergens_print_boxed_and_inverted_in_header_and_on_the_item() -> None:
    printed = lines(order(item(1, "Satay", allergens=["nuts", "gluten"]), item(2, "Fries")))
    header = find(printed, "ALLERGY: NUTS, GLUTEN")
    assert_boxed_inverted(printed, header)
    satay = find(printed, "Satay")
    assert header < satay
    on_item = find(printed[satay:], "NUTS, GLUTEN") + satay
    assert_boxed_inverted(printed, on_item)
    fries = find(printed, "Fries")
    assert not any("ALLERGY" in line.text or "NUTS" in line.text for line in printed[fries:])


def test_no_allergen_no_box() -> None:
    printed = lines(order(item(1, "Fries")))
    assert not any(line.invert for line in printed)


def test_rush_banner_on_a_rushed_ticket() -> None:
    printed = lines(order(item(1, "Burger"), rush=True))
    assert printed[0].text.strip() == "RUSH" and printed[0].invert


def test_rush_slip_is_short() -> None:
    # Printed when the ticket was on paper already: the banner, station, number — no items.
    printed = lines(order(item(1, "Burger"), rush=True), kind=TicketKind.RUSH)
    assert printed[0].text.strip() == "RUSH" and printed[0].invert
    find(printed, "#42")
    assert not any("Burger" in line.text for line in printed)
    assert len(printed) < 12


def test_move_marks_both_tickets() -> None:
    away = lines(order(item(1, "Burger")), kind=TicketKind.TRANSFER, moved_to="grill2")
    assert away[0].text.strip() == "TRANSFER" and away[0].invert
    find(away, "MOVED TO GRILL2")
    find(away, "Burger")
    here = lines(order(item(1, "Burger")), kind=TicketKind.NEW, moved_from="grill")
    assert here[0].text.strip() == "TRANSFER" and here[0].invert
    find(here, "MOVED FROM GRILL")
    find(here, "Burger")
