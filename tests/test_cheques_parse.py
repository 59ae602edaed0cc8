"""Reading the cheques API's answers (seed 003's own examples as fixtures)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from kds.sources.cheques.translate import ChequesUnavailable, line_key, parse_cheques
from kds.sources.coerce import as_decimal

FIXTURES = Path(__file__).parent / "fixtures" / "cheques"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_seed_example_is_read_with_decimals_tables_and_nameless_lines() -> None:
    # Guarantees: both cheque kinds, table/place, string money as Decimal, lines without name or code kept.
    postponed, order = parse_cheques(load("get_cheques_all.json"))
    assert (postponed.kind, postponed.table, postponed.name) == ("Postponed", None, "Чек 1")
    assert (order.kind, order.table, order.place) == ("Order", "2", "3")
    assert len(postponed.lines) == 5
    assert all(
        isinstance(line.quantity, Decimal) and line.price == Decimal(5) for line in postponed.lines
    )
    assert [line.code for line in postponed.lines] == [None, None, None, None, 10]
    # Four nameless, codeless lines at the same price are one key: the diff works on the multiset.
    assert len({line.key for line in postponed.lines[:4]}) == 1
    assert postponed.lines[4].key != postponed.lines[0].key
    assert order.lines[0].name == "Чай" and order.lines[0].quantity == 1


def test_488_and_other_errors_are_unavailable_not_empty() -> None:
    # Guarantees: an error answer never reads as "no cheques" (which would look like every cheque finished).
    with pytest.raises(ChequesUnavailable) as err:
        parse_cheques(load("error_488.json"))
    assert err.value.code == 488
    for bad in ([], {"resultCode": 500}, {"resultCode": 200, "cheques": {"x": 1}}, "ok"):
        with pytest.raises(ChequesUnavailable):
            parse_cheques(bad)
    assert parse_cheques({"resultCode": 200}) == []


def test_decimal_parsing_and_key_normalisation() -> None:
    # Guarantees: "5" and "5.00" are the same price; junk is rejected, not guessed.
    assert as_decimal("60.5") == Decimal("60.5")
    assert as_decimal("3,5") == Decimal("3.5")
    assert as_decimal("abc") is None and as_decimal(None) is None and as_decimal("NaN") is None
    assert line_key(None, None, Decimal("5")) == line_key(None, None, Decimal("5.00"))
    assert line_key(10, None, Decimal("5")) != line_key(None, None, Decimal("5"))
    # A named or coded line is the same dish at another price (a price correction).
    assert line_key(10, "Борщ", Decimal("6.5")) == line_key(10, "Борщ", Decimal("5.9"))
    assert line_key(None, None, None) is None


def test_bad_lines_are_reported_not_fatal() -> None:
    # Guarantees: one unreadable line or cheque does not hide the others; a line whose key is
    # readable keeps its key in the report (so only that dish is left alone), and a named line
    # with a junk price is still the same dish.
    data = {
        "resultCode": 200,
        "cheques": [
            {
                "info": {"uuid": "a", "chequeType": "Order", "table": 1},
                "items": [
                    {"name": "Soup", "price": "x", "quantity": "1"},
                    {"name": "Tea", "price": "2", "quantity": "2"},
                    {"name": "Zero", "price": "2", "quantity": "0"},
                    {"name": "Stew", "price": "2", "quantity": "lots"},
                    {"price": "?", "quantity": "1"},
                    "junk",
                    {"name": "Tea", "price": "2", "quantity": "-1"},
                ],
            },
            {"info": {}},
            "junk",
        ],
    }
    (cheque,) = parse_cheques(data)
    assert [(line.name, line.quantity) for line in cheque.lines] == [
        ("Soup", 1),
        ("Tea", 2),
        ("Tea", -1),
    ]
    assert [(u.position, u.key) for u in cheque.unreadable] == [
        (3, line_key(None, "Stew", None)),
        (4, None),
        (5, None),
    ]


@pytest.mark.parametrize("code", ["²", "٣", "１"])
def test_a_unicode_digit_result_code_is_unavailable_not_a_crash(code: str) -> None:
    # str.isdigit() accepts these, int() does not: the answer must be a clear error, not ValueError.
    with pytest.raises(ChequesUnavailable):
        parse_cheques({"resultCode": code, "cheques": []})
