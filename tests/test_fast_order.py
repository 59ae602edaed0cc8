"""The fast ingest path (`kds.api.fast_order`) accepts only what the full path accepts, and
builds the very same `OrderIn` from it.

The full path is what the native ingest route did before the fast path existed: `json.loads`
with kds's number rules, the 409 check on item ids, `OrderIn`'s validator. Every body of the
bad-input corpus, of the API tests and of generated orders (some near-valid, some with random
JSON in unknown fields and odd spellings of numbers and text) goes through both.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kds.api import fast_order
from kds.api.body import loads, validate
from kds.api.fast_order import order_from_bytes
from kds.api.orders import _unique_item_ids
from kds.bench.load import order_body as bench_order_body
from kds.errors import KdsError
from kds.model import (
    ItemEndpointIn,
    Location,
    OrderIn,
    OrderItemIn,
    Plu,
    Quantity,
    TicketInfo,
    body_json,
)

from .test_fuzz_api import json_values, orders
from .util import order_body

CORPUS = Path(__file__).parent / "fixtures" / "bad_input"

ITEM = {"plu": {"name": "Soup"}}


def full_path(raw: bytes) -> OrderIn | KdsError:
    """The full path's outcome: the validated order or the error the client gets."""
    try:
        data = loads(raw)
        _unique_item_ids(data)
        return validate(OrderIn, data)
    except KdsError as err:
        return err


def same(a: Any, b: Any, where: str = "order") -> None:
    """Equal values of equal types all the way down, and the same fields given at every model."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, BaseModel):
        assert a.model_fields_set == b.model_fields_set, where
        for name in type(a).model_fields:
            same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{n}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    else:
        assert a == b and repr(a) == repr(b), f"{where}: {a!r} != {b!r}"


def check(raw: bytes) -> OrderIn | None:
    """The fast path's result, after checking it is the full path's."""
    fast = order_from_bytes(raw)
    if fast is not None:
        full = full_path(raw)
        assert isinstance(full, OrderIn), f"fast path accepted what the full path refuses: {full}"
        same(fast, full)
        assert body_json(fast) == body_json(full)  # the stored body hash
    return fast


def test_the_common_bodies_take_the_fast_path() -> None:
    for body in (order_body("a"), bench_order_body("b"), {"items": [ITEM]}):
        assert check(json.dumps(body).encode()) is not None, body


def test_models_validated_alone_first_change_nothing() -> None:
    # pydantic-core reuses the validator of a model class already built on its own; a source
    # validating a Quantity or a TicketInfo before the first native order must not put their
    # loose validators into the fast path (it then refused every amount and let NaN through).
    Quantity(amount=Decimal(1))
    TicketInfo(customer={"name": "x"})
    Plu(name="x")
    OrderItemIn(plu={"name": "x"})
    ItemEndpointIn(name="grill")
    Location()
    fast_order._validator.cache_clear()
    assert check(json.dumps(order_body("a")).encode()) is not None
    for raw in ODD:
        check(raw)


@pytest.mark.parametrize(
    "path", sorted(CORPUS.glob("*.body")), ids=lambda p: p.name.removesuffix(".body")
)
def test_bad_input_corpus(path: Path) -> None:
    check(path.read_bytes())


def _with(**fields: Any) -> bytes:
    return json.dumps({"items": [ITEM], **fields}).encode()


def _item(**fields: Any) -> bytes:
    return json.dumps({"items": [{**ITEM, **fields}]}).encode()


#: Spellings the full path reads its own way: loose shapes it converts, numbers json.loads
#: refuses or reads differently, keys given twice or by both names.
ODD = [
    _with(id=7),
    _with(id=True),
    _with(number=7.0),
    _with(number="7"),
    _with(number=True),
    _with(user="anna"),
    _with(user={"a": [1, {"b": None}], "c": 1.5}),
    _with(ticket={"id": 5, "name": 6, "version": 2}),
    _with(ticket={"customer": "Mr X"}),
    _with(ticket={"customer": {"name": "X", "n": [[[[[[[[[1]]]]]]]]]}}),
    _with(ticket={"purchaseType": "takeAway", "location": {"zoneName": "a"}}),
    _with(dueAt="2026-12-02T10:00:00+01:00"),
    _with(dueAt="2026-12-02T10:00:00"),
    _with(dueAt=1700000000),
    _with(source="pos.1"),
    _with(source="bad source"),
    _with(deviceName="a", device_name="b"),
    _with(device_name="b", deviceName="a"),
    _item(quantity=2),
    _item(quantity={"amount": 2.0}),
    _item(quantity={"amount": 0.5, "unit": "kg"}),
    _item(quantity={"amount": 1000000}),
    _item(quantity={"amount": 1000001}),
    _item(quantity={"amount": "2"}),
    _item(quantity={"amount": True}),
    _item(quantity={"amount": 0}),
    _item(modifiers=[{"name": "no onion"}, "salt"]),
    _item(modifiers=["", "salt"]),
    _item(endpoints=["grill"]),
    _item(endpoints=[{"name": "grill", "orderItemStatus": "created"}]),
    _item(endpoints=[{"name": "grill", "status": "processed"}]),
    _item(allergens=["gluten"]),
    _item(id=2**31),
    _item(courseNumber=-1),
    _item(plu={"name": "x", "code": "A1"}),
    _item(plu={"name": "x", "code": 2**63}),
    _item(plu={"name": "x", "code": 1.0}),
    json.dumps({"items": [{**ITEM, "id": 1}, {**ITEM, "id": 1}]}).encode(),
    json.dumps({"items": [{**ITEM, "id": 1}, {**ITEM, "id": 1.0}]}).encode(),
    b'{"id":"a","id":"b","items":[{"plu":{"name":"x"}}]}',
    b'{"user":{"a":1,"b":2,"a":3},"items":[{"plu":{"name":"x"}}]}',
    b'{"dev\\u0069ceName":"a","items":[{"plu":{"name":"\\ud83d\\ude00"}}]}',
    b'{"foo":NaN,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":-Infinity,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":1e400,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":1E2,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":' + b"1" * 400 + b'.0,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":' + b"1" * 5000 + b',"items":[{"plu":{"name":"x"}}]}',
    b'{"user":{"a":NaN},"items":[{"plu":{"name":"x"}}]}',
    b'{"user":{"a":Infinity},"items":[{"plu":{"name":"x"}}]}',
    b'{"ticket":{"customer":{"a":1e400}},"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":"\\ud800","items":[{"plu":{"name":"x"}}]}',
    b'{"foo":"\xed\xa0\x80","items":[{"plu":{"name":"x"}}]}',
    b'{"foo":"a\x00b","items":[{"plu":{"name":"x"}}]}',
    b'{"foo":01,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":-0,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":1.,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":.5,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":+1,"items":[{"plu":{"name":"x"}}]}',
    b'{"foo":' + b"[" * 300 + b"]" * 300 + b',"items":[{"plu":{"name":"x"}}]}',
    b' \t\r\n{"items":[{"plu":{"name":"x"}}]}\n ',
    b'{"items":[{"plu":{"name":"x"}}],}',
    b'{"items":[{"plu":{"name":"x"}},]}',
    b"{'items':[]}",
]


@pytest.mark.parametrize("raw", ODD, ids=range(len(ODD)))
def test_odd_spellings(raw: bytes) -> None:
    check(raw)


def near(limit: int) -> st.SearchStrategy[int]:
    """Integers around 0 and around `limit` (a bound of the model)."""
    return st.integers(-2, 3) | st.integers(limit - 2, limit + 2) | st.integers(0, limit)


texts = st.text(max_size=20) | st.text(min_size=498, max_size=502)
free = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
#: Well-formed orders near every bound, each field sometimes in a spelling only the full path reads.
plain_items = st.fixed_dictionaries(
    {
        "plu": st.fixed_dictionaries(
            {"name": texts},
            optional={
                "code": near(2**63) | st.text(max_size=66),
                "group": texts,
                "stockName": texts,
            },
        )
    },
    optional={
        "id": near(2**31 - 1) | st.floats(0, 10),
        "quantity": st.fixed_dictionaries(
            {
                "amount": near(1_000_000)
                | st.floats(0, 10)
                | st.decimals(0, 10, places=4).map(float)
            },
            optional={"unit": st.text(max_size=9)},
        )
        | st.integers(0, 5),
        "comment": texts | st.none(),
        "courseNumber": near(2**31 - 1) | st.none(),
        "modifiers": st.lists(texts | st.fixed_dictionaries({"name": texts}), max_size=3),
        "endpoints": st.lists(
            st.sampled_from(["grill", "bar", ""])
            | st.fixed_dictionaries(
                {"name": st.text(max_size=66)},
                optional={"status": st.sampled_from(["created", "processed", "nope"])},
            ),
            max_size=3,
        ),
        "allergens": st.lists(st.text(max_size=34), max_size=3),
    },
)
plain_orders = st.fixed_dictionaries(
    {"items": st.lists(plain_items, min_size=1, max_size=4)},
    optional={
        "id": st.text(min_size=0, max_size=130) | near(10),
        "source": st.from_regex(r"[A-Za-z0-9_.-]{0,33}", fullmatch=True),
        "number": near(10**9) | st.none(),
        "deviceName": texts | st.none(),
        "user": texts | free | st.none(),
        "ticket": st.fixed_dictionaries(
            {},
            optional={
                "id": texts | near(5),
                "name": texts | near(5),
                "location": st.fixed_dictionaries(
                    {}, optional={"zoneName": texts, "tableName": texts}
                )
                | st.none(),
                "purchaseType": st.sampled_from(
                    ["unknown", "walkIn", "takeAway", "delivery", "sit-in"]
                ),
                "customer": free | texts | st.none(),
                "version": near(3) | st.none(),
            },
        ),
        "dueAt": st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
        | st.none(),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=plain_orders | orders, extra=st.none() | free)
@example(body={"items": [ITEM]}, extra={"x": float("nan")})
def test_generated_orders(body: dict[str, Any], extra: dict[str, Any] | None) -> None:
    check(json.dumps(body).encode())
    if extra is not None:
        check(json.dumps({**extra, **body}, ensure_ascii=False).encode())
