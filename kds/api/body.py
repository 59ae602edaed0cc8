"""Reading request bodies: bounded, strict UTF-8 JSON, pydantic-validated."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..errors import BadRequest, PayloadTooLarge, ValidationFailed

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request) -> Any:
    """The body as JSON; 400 for bad UTF-8 / JSON, 413 over the size limit."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:
        raise PayloadTooLarge(f"body over the limit of {request.app._client_max_size} bytes") from err
    if not raw:
        raise BadRequest("the request body is empty; expected JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"the body is not valid UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def validate(model: type[M], data: Any) -> M:
    """`data` as `model`; 422 listing each bad field and why."""
    if not isinstance(data, dict):
        raise ValidationFailed(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ValidationFailed(describe_errors(err), fields=_fields(err)) from None


def describe_errors(err: ValidationError) -> str:
    """One line per error: `items.0.quantity.amount: Input should be greater than 0`."""
    return "; ".join(f"{_loc(e)}: {e['msg']}" for e in err.errors()[:10])


def _loc(error: Any) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(body)"


def _fields(err: ValidationError) -> list[dict[str, str]]:
    return [{"field": _loc(e), "reason": e["msg"]} for e in err.errors()[:50]]
