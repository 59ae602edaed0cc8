"""NData parsing and evaluation (shared by the PORTOS simulator and, optionally, the orders API)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from kds.sources.portos import ndata
from kds.sources.portos.ndata import FieldSpec, NDataError, Operation, SortKey

ROWS = [
    {"id": "a", "n": 3, "name": "Pizza", "ok": True},
    {"id": "b", "n": 1, "name": "pasta", "ok": False},
    {"id": "c", "n": 2, "name": None, "ok": True},
]
FIELDS = {
    "id": FieldSpec(lambda r: r["id"]),
    "number": FieldSpec(lambda r: r["n"], int),
    "name": FieldSpec(lambda r: r["name"]),
    "isOk": FieldSpec(lambda r: r["ok"], bool),
}


def run(pairs: list[tuple[str, str]]) -> tuple[list[str], int]:
    query = ndata.parse_query(MultiDict(pairs), FIELDS)
    page, matched = ndata.apply(query, ROWS, FIELDS)
    return [r["id"] for r in page], matched


def test_operations_parse_operators_and_bare_values() -> None:
    # A bare value is equality on the whole text, even with ':' in it.
    assert ndata.parse_operations("gt:0;lt:50") == [
        Operation("gt", ("0",)),
        Operation("lt", ("50",)),
    ]
    assert ndata.parse_operations("true") == [Operation("eq", ("true",))]
    assert ndata.parse_operations("12:30") == [Operation("eq", ("12:30",))]
    assert ndata.parse_operations("IN:a:b") == [Operation("in", ("a", "b"))]
    assert ndata.parse_operations("in:a,b") == [Operation("in", ("a", "b"))]
    assert ndata.parse_operations("isnull") == [Operation("isnull", ())]
    with pytest.raises(NDataError):
        ndata.parse_operations("gt:1:2")


def test_sort_keys_directions_and_duplicates() -> None:
    # Keys are case-insensitive; ':desc' and a leading '-' are the same; repeats collapse.
    assert ndata.parse_sort(["Number,name:desc", "-ID,number"]) == [
        SortKey("number"),
        SortKey("name", True),
        SortKey("id", True),
    ]
    with pytest.raises(NDataError):
        ndata.parse_sort("a:sideways")


def test_filters_combine_and_coerce_by_type() -> None:
    assert run([("isOk", "true")]) == (["a", "c"], 2)
    assert run([("number", "gte:2"), ("Number", "lt:3")]) == (["c"], 1)
    assert run([("name", "contains:PA")]) == (["b"], 1)
    assert run([("name", "isnull")]) == (["c"], 1)
    assert run([("id", "nin:a:c")]) == (["b"], 1)
    assert run([("number", "ne:1"), ("$sort", "-number")]) == (["a", "c"], 2)
    with pytest.raises(NDataError):
        run([("number", "gt:x")])
    with pytest.raises(NDataError):
        run([("isOk", "maybe")])
    with pytest.raises(NDataError):
        run([("colour", "red")])


def test_paging_sort_and_count() -> None:
    # $skip/$take page after filtering; the match count ignores paging.
    assert run([("$sort", "number"), ("$skip", "1"), ("$take", "1")]) == (["c"], 3)
    assert run([("$sort", "name")]) == (["c", "b", "a"], 3)  # None first, case-insensitive
    query = ndata.parse_query({"$count": "true"}, FIELDS)
    assert query.count_only
    with pytest.raises(NDataError):
        ndata.parse_query({"$skip": "-1"}, FIELDS)
    with pytest.raises(NDataError):
        ndata.parse_query({"$sort": "colour"}, FIELDS)
