"""`/api/v1/openapi.json`: the HTTP API described for integrators and fuzzers.

Body schemas come from the pydantic models and the query patterns from the
NData parser (`kds.api.query`), so the document cannot drift from what the
handlers validate; `tests/test_fuzz_api.py` holds the server to it with
schemathesis (every check) and openapi-spec-validator. Every operation but
the public health routes needs a Bearer token (README "Access control") and
documents the 401, 403 and 429 it can answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from .. import __version__
from ..model import MAX_COURSE, OrderIn
from .orders import MAX_ITEM_ID, StatusContext
from .query import FILTERS, MAX_SKIP, MAX_TAKE, PATTERNS, SORT_KEYS, SORT_PATTERN, Kind

_ERROR = {"$ref": "#/components/schemas/Error"}
_ORDER = {"$ref": "#/components/schemas/Order"}
_BEARER = "bearerAuth"


class _WireSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with decimals as the JSON numbers the API takes."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        # pydantic publishes decimals as "number or any string" and drops decimal_places;
        # on our wire they are JSON numbers, and the places are a multipleOf.
        json_schema: dict[str, Any] = {"type": "number"}
        for key, name in (
            ("gt", "exclusiveMinimum"),
            ("ge", "minimum"),
            ("lt", "exclusiveMaximum"),
            ("le", "maximum"),
        ):
            if key in schema:
                json_schema[name] = _number(schema[key])  # type: ignore[literal-required]
        if schema.get("decimal_places") is not None:
            json_schema["multipleOf"] = _number(Decimal(1).scaleb(-schema["decimal_places"]))
        return json_schema


def _number(value: Any) -> int | float:
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


def _json(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(_ERROR)}


_ERRORS = {
    400: "bad path or query parameter",
    404: "no such order, item, endpoint or printer",
    409: "a transition the state machine does not allow; a different body under the same id; two items with one id; an item held back (error `held`: a course not fired, a scheduled order)",
    413: "body over [server] max_body_bytes",
    415: "the body is not Content-Type: application/json",
    422: "the body does not validate",
}


def _protected(errors: dict[str, Any]) -> dict[str, Any]:
    """The answers every operation behind a token can give."""
    too_many = _error(
        "too many requests; retry after Retry-After seconds (order ingest is rate-limited)"
    )
    too_many["headers"] = {
        "Retry-After": {
            "description": "seconds to wait",
            "schema": {"type": "integer", "minimum": 0},
        }
    }
    return {
        **errors,
        "401": _error("no token, or an unknown one"),
        "403": _error("the token's role may not do this, or a foreign Origin"),
        "429": too_many,
    }


def _operation(
    summary: str, ok: dict[str, Any], *errors: int, public: bool = False, **extra: Any
) -> dict[str, Any]:
    responses = {**ok, **{str(code): _error(_ERRORS[code]) for code in errors}}
    operation = {
        "summary": summary,
        **extra,
        "responses": responses if public else _protected(responses),
    }
    if public:
        operation["security"] = []
    return operation


def _ok(
    schema: dict[str, Any] | None = None, code: str = "200", description: str = "OK"
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = _json(schema)
    return {code: answer}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def _filter_parameters() -> list[dict[str, Any]]:
    """GET /api/v1/orders: every NData filter with its exact pattern, paging and sorting."""
    params = []
    for spec in FILTERS.values():
        schema: dict[str, Any] = {"type": "string"}
        if spec.kind is not Kind.TEXT:
            schema["pattern"] = PATTERNS[spec.kind]
        params.append(
            _query(
                spec.name,
                schema,
                f"NData ({spec.kind.value}): a value, a comma list, or op:arg conditions joined by ;",
            )
        )
    return params + [
        _query("$skip", {"type": "integer", "minimum": 0, "maximum": MAX_SKIP}),
        _query("$take", {"type": "integer", "minimum": 0, "maximum": MAX_TAKE, "default": 100}),
        _query(
            "$sort",
            {"type": "string", "pattern": SORT_PATTERN},
            f"keys {', '.join(SORT_KEYS)}; :asc/:desc or a leading -",
        ),
        _query("$count", {"type": "boolean"}, "true: only count and totalCount"),
    ]


def _schemas() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(OrderIn, "validation"), (StatusContext, "validation")],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
        schema_generator=_WireSchema,
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    # `"quantity": 2` is shorthand for {"amount": 2} (OrderItemIn._bare_quantity).
    quantity = schemas["OrderItemIn"]["properties"]["quantity"]
    quantity["anyOf"] = [
        {"$ref": quantity.pop("$ref")},
        schemas["Quantity"]["properties"]["amount"],
    ]
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    schemas["Order"] = {
        "type": "object",
        "description": "PORTOS Order JSON as stored by kds",
        "required": ["id", "number", "items"],
        "properties": {
            "id": {"type": "string"},
            "number": {"type": "integer"},
            "items": {"type": "array"},
            "dueAt": {"type": ["string", "null"], "format": "date-time"},
            "holds": {
                "type": "array",
                "description": "items held back from an endpoint (kds pacing)",
                "items": {
                    "type": "object",
                    "required": ["itemId", "endpoint", "reason"],
                    "properties": {
                        "itemId": {"type": "integer"},
                        "endpoint": {"type": "string"},
                        "reason": {"enum": ["scheduled", "course", "prep"]},
                        "course": {"type": ["integer", "null"]},
                        "releaseAt": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
    }
    counts = {
        "count": {"type": "integer", "minimum": 0},
        "totalCount": {"type": "integer", "minimum": 0},
    }
    schemas["QueryResult"] = {
        "type": "object",
        "required": ["items", "count", "totalCount"],
        "properties": {"items": {"type": "array", "items": {"type": "object"}}, **counts},
    }
    schemas["CountQueryResult"] = {
        "type": "object",
        "required": ["count", "totalCount"],
        "properties": counts,
    }
    return schemas


#: A report's `from` / `to`: an RFC 3339 date-time or a date (midnight, server time).
_WHEN = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the kds HTTP API."""
    order_id = _path("id")
    item_id = _path("itemId", {"type": "integer", "minimum": 0, "maximum": MAX_ITEM_ID})
    endpoint = _path("name")
    status_body = {"$ref": "#/components/schemas/StatusContext"}
    required_status = {"required": True, "content": _json(status_body)}
    # Seed 002: the item and endpoint routes' body is optional; without one nothing changes.
    optional_status = {"required": False, "content": _json(status_body)}
    query_result = {
        "anyOf": [
            {"$ref": "#/components/schemas/QueryResult"},
            {"$ref": "#/components/schemas/CountQueryResult"},
        ]
    }
    change = (400, 404, 409, 413, 415, 422)
    # The stored order is addressed by kds's id from the answer, not the POS's `id` in the body.
    links = {
        name: {"operationId": op, "parameters": {"id": "$response.body#/id"}}
        for name, op in (
            ("GetOrder", "getOrder"),
            ("CancelOrder", "cancelOrder"),
            ("SetOrderStatus", "setOrderStatus"),
        )
    }
    stored = _ok(_ORDER, "201", "stored")
    stored["201"]["links"] = links
    again = _ok(_ORDER, "200", "the same order again")
    again["200"]["links"] = links
    paths = {
        "/api/v1/orders": {
            "post": _operation(
                "Ingest an order (idempotent on source + id)",
                {**stored, **again},
                400,
                409,
                413,
                415,
                422,
                operationId="ingestOrder",
                requestBody={
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/OrderIn"}),
                },
            ),
            "get": _operation(
                "Query orders (NData filters)",
                _ok(query_result),
                400,
                parameters=_filter_parameters(),
            ),
        },
        "/api/v1/orders/{id}": {
            "get": _operation(
                "One order, live or archived",
                _ok(_ORDER),
                404,
                parameters=[order_id],
                operationId="getOrder",
            ),
            "delete": _operation(
                "Cancel an order: open items → processSkipped, VOID where printed",
                _ok(_ORDER),
                404,
                operationId="cancelOrder",
                parameters=[
                    order_id,
                    _query(
                        "reason",
                        {"type": "string"},
                        "why (kept in the audit log, first 500 characters)",
                    ),
                ],
            ),
        },
        "/api/v1/orders/{id}/status": {
            "post": _operation(
                "Status of the whole order",
                _ok(_ORDER),
                *change,
                parameters=[order_id],
                requestBody=required_status,
                operationId="setOrderStatus",
            ),
        },
        "/api/v1/orders/{id}/items/{itemId}/status": {
            "post": _operation(
                "Status of one item at all its endpoints",
                _ok(_ORDER),
                *change,
                parameters=[order_id, item_id],
                requestBody=optional_status,
            ),
        },
        "/api/v1/orders/{id}/endpoints/{name}/status": {
            "post": _operation(
                "Status of the order's items at one endpoint",
                _ok(_ORDER),
                *change,
                parameters=[order_id, endpoint],
                requestBody=optional_status,
            ),
        },
        "/api/v1/orders/{id}/endpoints/{name}/items/{itemId}/status": {
            "post": _operation(
                "Status of one item at one endpoint",
                _ok(_ORDER),
                *change,
                parameters=[order_id, endpoint, item_id],
                requestBody=optional_status,
            ),
        },
        "/api/v1/orders/{id}/rush": {
            "post": _operation(
                "Rush the order: first on every station, RUSH on screens and paper",
                _ok(_ORDER),
                404,
                409,
                parameters=[order_id],
            ),
        },
        "/api/v1/orders/{id}/endpoints/{name}/allergens/ack": {
            "post": _operation(
                "The station's cook saw the order's allergens (needed before accepting)",
                _ok(_ORDER),
                404,
                parameters=[order_id, endpoint],
            ),
        },
        "/api/v1/orders/{id}/endpoints/{name}/move": {
            "post": _operation(
                "Move the ticket's open items to another station (TRANSFER on both printers)",
                _ok(_ORDER),
                *change,
                parameters=[order_id, endpoint],
                requestBody={
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["to"],
                            "additionalProperties": False,
                            "properties": {
                                "to": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
                            },
                        }
                    ),
                },
            ),
        },
        "/api/v1/reports": {
            "get": _operation(
                "Per station, hour and product: tickets, times, late, refusals, recalls, printer failures",
                {
                    "200": {
                        "description": "OK (JSON, or CSV with format=csv)",
                        "content": {
                            **_json({"type": "object"}),
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                400,
                404,
                parameters=[
                    _query("from", _WHEN, "arrived at or after; default: a day before `to`"),
                    _query("to", _WHEN, "arrived before; default: now"),
                    _query("endpoint", {"type": "string"}, "one station"),
                    _query("format", {"type": "string", "enum": ["json", "csv"]}),
                ],
            ),
        },
        "/api/v1/orders/{id}/courses/{course}/fire": {
            "post": _operation(
                "Fire a held course: its items reach their stations and print now (no body)",
                _ok(_ORDER),
                400,
                404,
                parameters=[
                    order_id,
                    _path("course", {"type": "integer", "minimum": 0, "maximum": MAX_COURSE}),
                ],
                operationId="fireCourse",
            ),
        },
        "/api/v1/endpoints": {
            "get": _operation(
                "Order endpoints (PORTOS OrderEndpoint) from config", _ok(query_result)
            )
        },
        "/api/v1/ui": {
            "get": _operation("Settings the screens read at load", _ok({"type": "object"}))
        },
        "/api/v1/printers": {"get": _operation("Printers and their state", _ok(query_result))},
        "/api/v1/printers/{endpoint}/retry": {
            "post": _operation(
                "Print the endpoint's waiting tickets now",
                _ok({"type": "object"}, "202", "retrying"),
                404,
                parameters=[_path("endpoint")],
            ),
        },
        "/api/v1/sources/{name}/writebacks/retry": {
            "post": _operation(
                "Send the source's refused status write-backs again (after fixing the cause)",
                _ok(
                    {
                        "type": "object",
                        "required": ["source", "retried"],
                        "properties": {
                            "source": {"type": "string"},
                            "retried": {"type": "integer"},
                        },
                    },
                    "202",
                    "retrying",
                ),
                404,
                parameters=[_path("name")],
            ),
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            ),
        },
        "/healthz": {"get": _operation("Liveness", _ok({"type": "object"}), public=True)},
        "/readyz": {
            "get": _operation(
                "Readiness (component details only for a caller who may read)",
                {
                    **_ok({"type": "object", "required": ["status"]}),
                    **_ok({"type": "object"}, "503", "not ready"),
                },
                public=True,
            ),
        },
        "/api/v1/openapi.json": {
            "get": _operation("This document", _ok({"type": "object"}), public=True)
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kds",
            "version": __version__,
            "description": "Kitchen order-endpoint daemon (PORTOS Orders dialect)",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                _BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a kds token (`kds token`)",
                }
            },
        },
        "security": [{_BEARER: []}],
    }


async def handle_openapi(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json: the OpenAPI document (kds.app routes it here on first use)."""
    return web.json_response(build_openapi())
