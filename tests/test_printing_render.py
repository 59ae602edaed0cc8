"""Ticket rendering: layout, markings, code pages and transliteration, decoded back from the bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kds.model import (
    ItemEndpoint,
    Location,
    Order,
    OrderItem,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    TicketInfo,
)
from kds.printing.config import PrinterConfig
from kds.printing.render import Ticket, TicketKind, TicketRenderer
from kds.printing.transliterate import transliterate
from kds.simulators.printer import EscPosDecoder, Line

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def item(
    item_id: int,
    name: str,
    amount: str = "1",
    *,
    endpoint: str = "grill",
    status: OrderStatus = OrderStatus.CREATED,
    **extra: Any,
) -> OrderItem:
    return OrderItem(
        id=item_id,
        plu=Plu(name=name),
        quantity=Quantity(amount=Decimal(amount)),
        endpoints=[ItemEndpoint(name=endpoint, status=status)],
        **extra,
    )


def make_order(items: list[OrderItem], **extra: Any) -> Order:
    fields: dict[str, Any] = dict(
        id="ord-1",
        number=42,
        source="native",
        external_id="x1",
        user={"userName": "anna"},
        device_name="POS1",
        ticket=TicketInfo(name="T12", location=Location(table_name="12", zone_name="Terrace")),
        items=items,
        created_at=NOW,
        updated_at=NOW,
    )
    fields.update(extra)
    return Order(**fields)


def decode(data: bytes, profile: str = "TM-T20II") -> EscPosDecoder:
    decoder = EscPosDecoder(profile)
    decoder.feed(data)
    decoder.finish()
    assert not decoder.unknown, decoder.unknown
    return decoder


def render(order: Order, config: PrinterConfig | None = None, **ticket: Any) -> EscPosDecoder:
    config = config or PrinterConfig(address="127.0.0.1:9100")
    ticket.setdefault("endpoint", "grill")
    ticket.setdefault("job_id", 7)
    return decode(
        TicketRenderer(config, tz=UTC).render(Ticket(order=order, **ticket)), config.profile
    )


def index_of(lines: list[Line], text: str, start: int = 0) -> int:
    for i in range(start, len(lines)):
        if text in lines[i].text:
            return i
    raise AssertionError(
        f"{text!r} not printed after line {start}: {[line.text for line in lines]}"
    )


def test_ticket_layout_in_order() -> None:
    # Endpoint, big order number, table, time and server come first; items follow grouped by
    # course with their modifiers and comment right below them; the job id is at the bottom; cut.
    order = make_order(
        [
            item(
                1,
                "Cheeseburger",
                "2",
                modifiers=["no onion", "extra cheese"],
                comment="medium rare",
                course_number=2,
            ),
            item(2, "Tomato soup", course_number=1),
            item(3, "Cola", endpoint="bar"),
            item(4, "Fries", "1", modifiers=["salt"], course_number=2),
        ]
    )
    d = render(order)
    lines = d.lines
    at = {
        text: index_of(lines, text)
        for text in ("GRILL", "#42", "Table 12", "12:30", "Server: anna")
    }
    assert list(at.values()) == sorted(at.values())
    number = lines[at["#42"]]
    assert number.width >= 2 and number.height >= 2 and number.bold
    course1 = index_of(lines, "COURSE 1")
    soup = index_of(lines, "1 x Tomato soup", course1)
    course2 = index_of(lines, "COURSE 2", soup)
    burger = index_of(lines, "2 x Cheeseburger", course2)
    assert lines[burger].height == 2 and lines[burger].bold  # items in large type
    assert lines[burger + 1].text == "   + no onion"
    assert lines[burger + 2].text == "   + extra cheese"
    assert lines[burger + 3].text == "   ! medium rare" and lines[burger + 3].bold
    fries = index_of(lines, "1 x Fries", burger)
    assert lines[fries + 1].text == "   + salt"
    assert "Cola" not in d.text  # another endpoint's item
    job = index_of(lines, "Job 7", fries)
    assert job > fries
    assert d.cuts == 1 and len(d.tickets) == 1
    assert "VOID" not in d.text and "REPRINT" not in d.text and "TRANSFER" not in d.text


@pytest.mark.parametrize(
    ("kind", "reprint", "banners"),
    [
        (TicketKind.VOID, False, ["VOID"]),
        (TicketKind.TRANSFER, False, ["TRANSFER"]),
        (TicketKind.NEW, True, ["REPRINT"]),
        (TicketKind.VOID, True, ["VOID", "REPRINT"]),
    ],
)
def test_void_transfer_and_reprint_are_marked_unmistakably(
    kind: TicketKind, reprint: bool, banners: list[str]
) -> None:
    # The marking is an inverted double-size banner above everything else, not a footnote.
    order = make_order([item(1, "Steak", status=OrderStatus.PROCESS_SKIPPED), item(2, "Salad")])
    d = render(
        order, kind=kind, reprint=reprint, item_ids=(1,) if kind is TicketKind.VOID else None
    )
    top = d.lines[: len(banners)]
    assert [line.text.strip() for line in top] == banners
    assert all(line.invert and line.width == 2 and line.height == 2 for line in top)
    if kind is TicketKind.VOID:
        assert index_of(d.lines, "VOID 1 x Steak") > index_of(d.lines, "#42")
        assert "Salad" not in d.text
    if kind is TicketKind.TRANSFER:
        assert "NOW AT: Table 12 / Terrace" in d.text
    if reprint:
        assert "REPRINT - NOT A NEW ORDER" in d.lines[-1].text


def test_new_ticket_leaves_out_items_cancelled_before_it_printed() -> None:
    order = make_order([item(1, "Steak", status=OrderStatus.PROCESS_SKIPPED), item(2, "Salad")])
    d = render(order, item_ids=(1, 2))
    assert "Steak" not in d.text and "1 x Salad" in d.text


def test_takeaway_delivery_and_customer() -> None:
    order = make_order(
        [item(1, "Pizza")],
        ticket=TicketInfo(
            name="Web 7",
            purchase_type=PurchaseType.DELIVERY,
            customer={"name": "Eva", "phone": "+421 900"},
        ),
    )
    d = render(order)
    assert "DELIVERY" in d.text and "Customer: Eva, +421 900" in d.text and "Web 7" in d.text
    takeaway = make_order(
        [item(1, "Pizza")], ticket=TicketInfo(purchase_type=PurchaseType.TAKE_AWAY)
    )
    assert "TAKEAWAY" in render(takeaway).text


def test_copies_buzzer_and_long_names() -> None:
    # Copies are separate cut tickets, the second marked COPY 2/2; long names wrap, nothing is lost.
    long_name = (
        "Extraordinarily long dish name that will never fit on one line of a kitchen printer"
    )
    config = PrinterConfig(address="127.0.0.1", copies=2, buzzer=3, columns=32)
    d = render(make_order([item(1, long_name, modifiers=["a very long modifier " * 3])]), config)
    assert d.cuts == 2 and len(d.tickets) == 2 and d.beeps == 6
    first, second = d.ticket_texts()
    assert "COPY 2/2" in second and "COPY" not in first
    assert all(len(line.text) <= 32 for line in d.lines if line.width == 1)
    flat = " ".join(" ".join(line.split()) for line in first.splitlines() if line.strip())
    assert long_name in flat


def test_fractional_quantities_and_units() -> None:
    order = make_order(
        [
            OrderItem(
                id=1,
                plu=Plu(name="Beef"),
                quantity=Quantity(amount=Decimal("0.250"), unit="kg"),
                endpoints=[ItemEndpoint(name="grill", status=OrderStatus.CREATED)],
            ),
        ]
    )
    assert "0.25 kg x Beef" in render(order).text


# ----------------------------------------------------------------------------- characters

FOOD = ["Čučoriedkový koláč", "Größe", "Борщ"]


def test_slovak_german_cyrillic_print_through_tm_t20ii_code_pages() -> None:
    # A TM-T20II has CP852 and CP866: the text comes out exactly, with code page switches.
    order = make_order([item(i, name) for i, name in enumerate(FOOD, start=1)])
    d = render(order)
    for name in FOOD:
        assert f"1 x {name}" in d.text
    assert "?" not in d.text
    assert {"CP852", "CP866"} <= set(d.code_pages)


@pytest.mark.parametrize("profile", ["simple", "TM-U220"])
def test_printer_without_those_code_pages_gets_transliteration_never_a_question_mark(
    profile: str,
) -> None:
    order = make_order([item(i, name) for i, name in enumerate(FOOD, start=1)])
    d = render(order, PrinterConfig(address="127.0.0.1", profile=profile))
    assert "1 x Cucoriedkovy kolac" in d.text
    assert "1 x Borshch" in d.text
    assert "1 x Größe" in d.text  # CP437 has ö and ß
    assert "?" not in d.text
    assert set(d.code_pages) == {"CP437"}
    ascii_only = render(order, PrinterConfig(address="127.0.0.1", profile=profile, ascii_only=True))
    assert "1 x Groesse" in ascii_only.text and "?" not in ascii_only.text


def test_restricting_code_pages_to_what_the_printer_has_installed() -> None:
    order = make_order([item(1, "Борщ"), item(2, "Čučoriedkový koláč")])
    d = render(order, PrinterConfig(address="127.0.0.1", code_pages=["CP437", "CP852"]))
    assert "1 x Borshch" in d.text and "1 x Čučoriedkový koláč" in d.text


@pytest.mark.parametrize(
    ("text", "ascii"),
    [
        ("Čučoriedkový koláč", "Cucoriedkovy kolac"),
        ("Borщ Борщ", "Borshch Borshch"),
        ("БОРЩ", "BORSHCH"),
        ("Größe", "Groesse"),
        ("Příliš žluťoučký kůň", "Prilis zlutoucky kun"),
        ("mäsový vývar", "masovy vyvar"),
        ("Щи с курицей", "Shchi s kuritsey"),
        ("Łódź – crème brûlée “x” ½", 'Lodz - creme brulee "x" 1/2'),
        ("hot 🌶 dish", "hot  dish"),
        # Scripts and signs beyond the ones kds knew by hand: a dish name never vanishes.
        ("Gyros γύρος", "Gyros gyros"),
        ("ラーメン", "ramen"),
        ("⅓ l", "1/3 l"),
        ("₹ 50", "Rs 50"),
        ("¿Qué?", "Que?"),  # no `?` the POS did not send
        ("Фасоль, Їжак", "Fasol, Yizhak"),
    ],
)
def test_transliteration(text: str, ascii: str) -> None:
    assert transliterate(text) == ascii


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_prints_without_question_marks(text: str) -> None:
    # Whatever a POS sends, the printer never shows a `?` that was not in the text.
    renderer = TicketRenderer(PrinterConfig(address="127.0.0.1", profile="simple"), tz=UTC)
    printable = renderer.printable(text)
    assert printable.count("?") == text.count("?")
    printable.encode("cp437")  # everything left is printable on CP437


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=6))
def test_ascii_shortcut_writes_what_python_escpos_writes(texts: list[str]) -> None:
    # The renderer skips python-escpos's per-character code-page search for ASCII text once a
    # code page is selected; the bytes are the library's own, whatever the text.
    from escpos.magicencode import Encoder
    from escpos.printer import Dummy

    from kds.printing.render import _AsciiMagic

    pages = Dummy(profile="TM-T20II").profile.get_code_pages()
    ours = Dummy(profile="TM-T20II")
    ours.magic = _AsciiMagic(ours, encoder=Encoder(pages), defaultsymbol="")
    theirs = Dummy(
        profile="TM-T20II", magic_encode_args={"encoder": Encoder(pages), "defaultsymbol": ""}
    )
    for text in ["#12", *texts, "Größe", "ok"]:
        ours.textln(text)
        theirs.textln(text)
    assert ours.output == theirs.output


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=10, max_value=48))
@example(text="0 \U0002a700", width=10)  # no reading: its space was left at the end of the line
@example(text="a \U0002a700 b", width=20)  # ... or doubled inside it
def test_short_lines_are_laid_out_as_textwrap_lays_them_out(text: str, width: int) -> None:
    # A line that fits is written as is, without textwrap: the same lines as textwrap makes.
    import textwrap

    from escpos.printer import Dummy

    from kds.printing.sanitize import clean_text

    renderer = TicketRenderer(PrinterConfig(address="127.0.0.1"), tz=UTC)
    ours = Dummy(profile="TM-T20II")
    renderer._wrapped(ours, text, width, lead="   ", indent="     ")
    expected: list[str] = []
    for line in clean_text(text).split("\n"):
        body = renderer.printable(line)
        if body:
            expected += textwrap.wrap(
                body,
                width=max(width, 13),  # room for the indent and a word
                initial_indent="     " if expected else "   ",
                subsequent_indent="     ",
                break_long_words=True,
                break_on_hyphens=False,
            )
    theirs = Dummy(profile="TM-T20II")
    for line in expected or [""]:
        theirs.textln(line)
    assert ours.output == theirs.output
