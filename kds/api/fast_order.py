"""The common ingest body validated straight from its bytes, by pydantic-core alone.

Most orders are plain, well-formed JSON: integers where integers go, text where text
goes, objects where objects go, and no key kds does not know. For those, parsing with `json.loads` and then running
`OrderIn`'s Python validators (one call per integer, per list, per item) is a third of
validation's cost for nothing. `order_from_bytes` validates such a body in one pass
over its bytes with a strict copy of `OrderIn`'s own schema, and gives up (None) on
anything else; the caller then takes the full path (`kds.api.body`), so every error
text, status and accepted loose spelling (`"quantity": 2`, an integer ticket id, a
modifier object) stays exactly what it is. The copy builds the same `OrderIn` objects,
so the body hash and the order built from it cannot differ
(`tests/test_fast_order.py` runs both paths over the API corpora and generated bodies).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

from ..model import (
    OrderIn,
    OrderItemIn,
    Quantity,
    TicketInfo,
    _free_object,
    _json_integer,
)


def _function(f: Any) -> Any:
    return getattr(f, "__func__", f)  # a classmethod validator is bound in the schema


#: Before-validators whose only work strict JSON does already (refusing bools and text as
#: integers) or that convert a loose spelling strict validation refuses (so the full path
#: takes that body): the strict copy leaves them out. Any other validator stays.
_STRICT_JSON_COVERS = frozenset(
    _function(f)
    for f in (
        _json_integer,
        OrderIn._id_as_text,
        TicketInfo._id_as_text,
        TicketInfo._customer_object,
        OrderItemIn._bare_quantity,
        OrderItemIn._modifier_names,
        OrderItemIn._endpoint_names,
    )
)


def _free_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """`_free_object`, also refusing what `json.loads` in the full path refuses: NaN, ±Infinity."""
    if _plain(value):
        return value  # ASCII text only, nothing nested: nothing either check could refuse
    _check_finite(_free_object(value))  # its depth bound first
    return value


def _plain(value: dict[str, Any]) -> bool:
    """The common free object (`{"userName": "anna"}`): ASCII keys and ASCII text values."""
    for key, item in value.items():
        if type(item) is not str or not item.isascii() or not key.isascii():
            return False
    return True


def _check_finite(value: Any) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)


def _strict_copy(schema: Any) -> Any:
    """`schema` with the validators strict JSON covers left out (see `_STRICT_JSON_COVERS`)."""
    if isinstance(schema, list):
        return [_strict_copy(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("function-before", "function-after"):
        function = _function(schema["function"]["function"])
        if kind == "function-before" and function in _STRICT_JSON_COVERS:
            return _strict_copy(schema["schema"])
        if function is _function(Quantity._no_bool_or_nan):
            # An amount as a JSON integer, as the full path would read it (a fraction, text or
            # anything else: the full path, with its decimal rules and messages).
            decimal = schema["schema"]
            return cs.no_info_after_validator_function(
                Decimal, cs.int_schema(gt=decimal["gt"], le=decimal["le"], strict=True)
            )
        if function is _free_object:
            return cs.no_info_after_validator_function(
                _free_json_object, _strict_copy(schema["schema"])
            )
    copy = {
        key: value
        if key in ("cls", "function", "metadata", "serialization")
        else _strict_copy(value)
        for key, value in schema.items()
    }
    if kind == "model":
        # A key kds does not know: the full path, which ignores it after json.loads has checked
        # it (here it would go unread, NaN, Infinity and 1e400 included).
        copy["config"] = {**schema.get("config", {}), "extra_fields_behavior": "forbid"}
    return copy


@cache
def _validator() -> SchemaValidator:
    # Built on the first order, as the models are (a start loads orders without them).
    OrderIn.model_rebuild()
    schema: CoreSchema = _strict_copy(OrderIn.__pydantic_core_schema__)
    with _own_validators(_classes(schema)):
        return SchemaValidator(schema, cs.CoreConfig(strict=True))


def _classes(schema: Any) -> set[type]:
    """The model classes a schema builds."""
    found: set[type] = set()
    if isinstance(schema, list):
        for s in schema:
            found |= _classes(s)
    elif isinstance(schema, dict):
        if schema.get("type") == "model":
            found.add(schema["cls"])
        for key, value in schema.items():
            if key not in ("cls", "function", "metadata", "serialization"):
                found |= _classes(value)
    return found


@contextmanager
def _own_validators(classes: set[type]) -> Iterator[None]:
    """pydantic-core reuses a model's own validator where a schema names a class whose
    validator is built already (`__pydantic_complete__`), which would put back the loose
    validators left out here (a `Quantity` or `TicketInfo` validated alone first, as a source
    does). While the strict copy is built, its classes read as not built."""
    saved = {cls: cls.__dict__.get("__pydantic_complete__") for cls in classes}
    try:
        for cls in classes:
            cls.__pydantic_complete__ = False  # type: ignore[attr-defined]
        yield
    finally:
        for cls, complete in saved.items():
            if complete is None:
                delattr(cls, "__pydantic_complete__")
            else:
                cls.__pydantic_complete__ = complete  # type: ignore[attr-defined]


def order_from_bytes(raw: bytes) -> OrderIn | None:
    """The `OrderIn` of a plainly well-formed body, or None: then validate it the full way."""
    try:
        return _validator().validate_json(raw, strict=True)  # type: ignore[no-any-return]
    except ValidationError:
        return None
