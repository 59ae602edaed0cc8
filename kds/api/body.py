"""Reading request bodies: bounded, strict UTF-8 JSON, pydantic-validated."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..errors import BadRequest, PayloadTooLarge, ValidationFailed

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request) -> Any:
    """The body as JSON; 400 for bad UTF-8 / JSON, 413 over the size limit."""
    return loads(await read_body(request))


async def read_body(request: web.Request) -> bytes:
    """The body's bytes; 400 when empty, 413 over the size limit."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:
        raise PayloadTooLarge(
            f"body over the limit of {request.app._client_max_size} bytes"
        ) from err
    if not raw:
        raise BadRequest("the request body is empty; expected JSON")
    return raw


class _NotFinite(ValueError):
    """A number JSON cannot carry: NaN, Infinity, or one that overflows a float (1e400)."""


def loads(raw: bytes) -> Any:
    """Strict JSON from bytes: 400 for bad UTF-8, bad JSON or deep nesting; 422 for non-finite numbers.

    Python's json reads `NaN`, `Infinity` and `1e400` (as inf) without a word;
    stored, they came back as null. Every webhook and API body goes through here.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"the body is not valid UTF-8 (byte {err.start})") from None
    try:
        return _DECODER.decode(text)
    except _NotFinite as err:
        raise ValidationFailed(str(err)) from None
    except ValueError as err:  # JSONDecodeError is a ValueError
        raise BadRequest(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None


def _reject_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a finite number; JSON numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(
            f"{text[:40]} is not a finite number (it overflows a double); JSON numbers must be finite"
        )
    return value


#: `json.loads(text, parse_constant=…, parse_float=…)` would build a decoder per body.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def validate(model: type[M], data: Any) -> M:
    """`data` as `model`; 422 listing each bad field and why."""
    if not isinstance(data, dict):
        raise ValidationFailed(f"expected a JSON object, got {type(data).__name__}")
    try:
        # The validator itself: model_validate's wrapper adds a frame and its keywords per body.
        return model.__pydantic_validator__.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as err:
        raise ValidationFailed(describe_errors(err), fields=_fields(err)) from None


def describe_errors(err: ValidationError) -> str:
    """One line per error: `items.0.quantity.amount: Input should be greater than 0`."""
    return "; ".join(f"{_loc(e)}: {e['msg']}" for e in err.errors()[:10])


def _loc(error: Any) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(body)"


def _fields(err: ValidationError) -> list[dict[str, str]]:
    return [{"field": _loc(e), "reason": e["msg"]} for e in err.errors()[:50]]
