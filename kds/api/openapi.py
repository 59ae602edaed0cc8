"""`/api/v1/openapi.json`: the HTTP API described for integrators and fuzzers.

Schemas come from the pydantic models, so the document cannot drift from
what the handlers validate.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..model import OrderIn, OrderStatus
from .orders import StatusContext

routes = web.RouteTableDef()

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(ok: str, *errors: int) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "OK", "content": _json({"$ref": "#/components/schemas/Order"})}}
    for code in errors:
        responses[str(code)] = {"description": "error", "content": _json(_ERROR)}
    return responses


def _path_param(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": type_}}


def _query_param(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": type_}}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the kds HTTP API."""
    _, defs = models_json_schema(
        [(OrderIn, "validation"), (StatusContext, "validation")],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    schemas["Order"] = {"type": "object", "description": "PORTOS Order JSON as stored by kds"}
    schemas["QueryResult"] = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
            "count": {"type": "integer"},
            "totalCount": {"type": "integer"},
        },
    }
    status_body = {"required": True, "content": _json({"$ref": "#/components/schemas/StatusContext"})}
    order_id = _path_param("id")
    list_params = [
        _query_param(n) for n in ("deviceName", "id", "ticketId", "ticketName", "userUserName", "source", "externalId", "endpoint")
    ] + [
        _query_param("number", "integer"),
        _query_param("posNumber", "integer"),
        {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": [s.value for s in OrderStatus]}},
        _query_param("isProcessed", "boolean"),
        _query_param("isProcessable", "boolean"),
        _query_param("$skip", "integer"),
        _query_param("$take", "integer"),
        _query_param("$sort"),
        _query_param("$count", "boolean"),
    ]
    paths = {
        "/api/v1/orders": {
            "post": {
                "summary": "Ingest an order (idempotent on source + id)",
                "requestBody": {"required": True, "content": _json({"$ref": "#/components/schemas/OrderIn"})},
                "responses": {**_responses("201", 400, 409, 413, 422), "200": {"description": "repeat of a stored order"}},
            },
            "get": {
                "summary": "Query orders",
                "parameters": list_params,
                "responses": {
                    "200": {"description": "OK", "content": _json({"$ref": "#/components/schemas/QueryResult"})},
                    "400": {"description": "bad query", "content": _json(_ERROR)},
                },
            },
        },
        "/api/v1/orders/{id}": {
            "get": {"summary": "One order", "parameters": [order_id], "responses": _responses("200", 404)},
            "delete": {"summary": "Cancel an order", "parameters": [order_id], "responses": _responses("200", 404)},
        },
        "/api/v1/orders/{id}/status": {
            "post": {"summary": "Status of the whole order", "parameters": [order_id], "requestBody": status_body,
                     "responses": _responses("200", 400, 404, 409, 422)},
        },
        "/api/v1/orders/{id}/items/{itemId}/status": {
            "post": {"summary": "Status of one item", "parameters": [order_id, _path_param("itemId", "integer")],
                     "requestBody": status_body, "responses": _responses("200", 400, 404, 409, 422)},
        },
        "/api/v1/orders/{id}/endpoints/{name}/status": {
            "post": {"summary": "Status at one endpoint", "parameters": [order_id, _path_param("name")],
                     "requestBody": status_body, "responses": _responses("200", 400, 404, 409, 422)},
        },
        "/api/v1/orders/{id}/endpoints/{name}/items/{itemId}/status": {
            "post": {"summary": "Status of one item at one endpoint",
                     "parameters": [order_id, _path_param("name"), _path_param("itemId", "integer")],
                     "requestBody": status_body, "responses": _responses("200", 400, 404, 409, 422)},
        },
        "/api/v1/endpoints": {"get": {"summary": "Order endpoints", "responses": {"200": {"description": "OK"}}}},
        "/api/v1/printers": {"get": {"summary": "Printers and their state", "responses": {"200": {"description": "OK"}}}},
        "/api/v1/printers/{endpoint}/retry": {
            "post": {"summary": "Retry the endpoint's waiting tickets now", "parameters": [_path_param("endpoint")],
                     "responses": {"202": {"description": "retrying"},
                                   "404": {"description": "no printer", "content": _json(_ERROR)}}},
        },
        "/api/v1/sources/{name}/writebacks/retry": {
            "post": {"summary": "Send the source's refused status write-backs again (after fixing the cause)",
                     "parameters": [_path_param("name")],
                     "responses": {"202": {"description": "retrying", "content": _json({
                                       "type": "object", "required": ["source", "retried"],
                                       "properties": {"source": {"type": "string"}, "retried": {"type": "integer"}}})},
                                   "404": {"description": "no write-back source of that name", "content": _json(_ERROR)}}},
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "OK"}, "503": {"description": "not ready"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "kds", "version": __version__, "description": "Kitchen order-endpoint daemon (PORTOS Orders dialect)"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


@routes.get("/api/v1/openapi.json")
async def _handle_openapi(request: web.Request) -> web.Response:
    """The OpenAPI document."""
    return web.json_response(build_openapi())
