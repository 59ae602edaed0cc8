"""The orders API in the PORTOS Orders dialect (seed 002, DESIGN §6).

Handlers validate input and call the service; they never change state
themselves. Errors surface as `kds.errors` and become JSON in the middleware.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

from ..appkeys import ACTOR, SERVICE, SETTINGS
from ..errors import ConflictError, NotFound
from ..model import MAX_COURSE, Order, OrderIn, OrderStatus
from .body import loads, read_body, read_json, validate
from .fast_order import order_from_bytes
from .params import parse_int
from .screens import screen_timers
from .views import strip_personal, view_of

routes = web.RouteTableDef()


def _iso_text(value: object) -> object:
    # JSON has no dates: an ISO 8601 string, not a number pydantic would read as a timestamp.
    if value is not None and not isinstance(value, str):
        raise ValueError("date must be an ISO 8601 date-time string")
    return value


#: The range of item ids kds stores (`OrderItemIn.id`), published in the OpenAPI document.
MAX_ITEM_ID = 2**31 - 1


class StatusContext(BaseModel):
    """PORTOS OrderStatusContext, plus `date` (seed 004's status change has one), a reason and recall.

    `date` is when the client saw the change; it is validated and accepted, and kds records
    the change at its own clock, so the audit log stays in order.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    status: OrderStatus
    date: Annotated[AwareDatetime, BeforeValidator(_iso_text)] | None = None
    reason: str | None = Field(default=None, max_length=500)
    recall: Annotated[bool, Strict()] = False


def _order_json(order: Order, status: int = 200) -> web.Response:
    # A change's JSON is kept already (its event); a repeat's or an unchanged order's is not
    # kept here, or it would stay outside the view's few recent ones until the next change.
    text = order.wire_json(keep=False)
    return web.Response(text=text, status=status, content_type="application/json")


@routes.post("/api/v1/orders")
async def _handle_ingest(request: web.Request) -> web.Response:
    """Native ingest: store the order durably, then answer 201 (or 200 for a repeat)."""
    raw = await read_body(request)
    order_in = order_from_bytes(raw)
    if order_in is None:  # not plainly well-formed: the full way, with its exact 4xx answers
        data = loads(raw)
        _unique_item_ids(data)
        order_in = validate(OrderIn, data)
    result = await request.app[SERVICE].ingest(order_in)
    return _order_json(result.order, status=201 if result.created else 200)


def _unique_item_ids(data: Any) -> None:
    """Two items under one id are a uniqueness conflict (409), as for orders under one id."""
    items = data.get("items") if isinstance(data, dict) else None
    seen: set[float] = set()
    for item in items if isinstance(items, list) else []:
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, (int, float)) and not isinstance(item_id, bool):
            if item_id in seen:
                raise ConflictError(
                    f"two items have id {item_id}: item ids must be unique within an order"
                )
            seen.add(item_id)


@routes.get("/api/v1/orders")
async def _handle_list(request: web.Request) -> web.Response:
    """Orders matching the PORTOS filters, paged: QueryResult{items, count, totalCount}."""
    from .query import parse_order_query  # the NData parser: on the first list, not at start

    query = parse_order_query(request.query)
    text = query.run(request.app[SERVICE].orders(), view_of(request))
    return web.Response(text=text, content_type="application/json")


@routes.get("/api/v1/orders/{id}")
async def _handle_get(request: web.Request) -> web.Response:
    """One order, live or archived."""
    service = request.app[SERVICE]
    order_id = request.match_info["id"]
    view = view_of(request)
    order = service.get(order_id)
    if order is not None and view.shows(order):
        return web.Response(text=view.order_json(order), content_type="application/json")
    archived = None if order is not None else await service.get_archived(order_id)
    if archived is None or not view.shows_archived(archived):
        raise NotFound(f"no order {order_id!r}")
    return web.json_response(strip_personal(archived) if view.private else archived)


def _item_id(request: web.Request) -> int:
    return parse_int("itemId", request.match_info["itemId"], high=MAX_ITEM_ID)


def _unchanged(request: web.Request, endpoint: str | None, item_id: int | None) -> Order:
    """The open order, if it has the item/endpoint a status route names (404 like a change would)."""
    order_id = request.match_info["id"]
    order = request.app[SERVICE].get(order_id)
    if order is None:
        raise NotFound(f"no open order {order_id!r}")
    if not any(
        endpoint is None or e.name == endpoint
        for i in order.items
        if item_id is None or i.id == item_id
        for e in i.endpoints
    ):
        raise NotFound(f"order {order_id!r} has no item {item_id} at endpoint {endpoint!r}")
    return order


async def _change(
    request: web.Request,
    *,
    endpoint: str | None = None,
    item_id: int | None = None,
    body_optional: bool = False,
) -> web.Response:
    if body_optional and not await request.read():
        # Seed 002: the item and endpoint routes take an optional body. Without one there is
        # no status to set; answer the order (after checking it names a real item/endpoint).
        return _order_json(_unchanged(request, endpoint, item_id))
    ctx = validate(StatusContext, await read_json(request))
    order = await request.app[
        SERVICE
    ].set_status(
        request.match_info["id"],
        ctx.status,
        endpoint=endpoint,
        item_ids=None if item_id is None else [item_id],
        reason=ctx.reason,
        recall=ctx.recall,
        actor=request.get(ACTOR, "api"),
        walk=True,  # a screen's "accept" of a sent ticket is one request (sent → delivered → accepted)
    )
    return _order_json(order)


@routes.post("/api/v1/orders/{id}/status")
async def _handle_order_status(request: web.Request) -> web.Response:
    """Change the status of every item at every endpoint of the order."""
    return await _change(request)


@routes.post("/api/v1/orders/{id}/items/{itemId}/status")
async def _handle_item_status(request: web.Request) -> web.Response:
    """Change the status of one item at all its endpoints."""
    return await _change(request, item_id=_item_id(request), body_optional=True)


@routes.post("/api/v1/orders/{id}/endpoints/{name}/status")
async def _handle_endpoint_status(request: web.Request) -> web.Response:
    """Change the status of the order's items at one endpoint."""
    return await _change(request, endpoint=request.match_info["name"], body_optional=True)


@routes.post("/api/v1/orders/{id}/endpoints/{name}/items/{itemId}/status")
async def _handle_item_endpoint_status(request: web.Request) -> web.Response:
    """Change the status of one item at one endpoint (a station bumping one line)."""
    return await _change(
        request, endpoint=request.match_info["name"], item_id=_item_id(request), body_optional=True
    )


@routes.post("/api/v1/orders/{id}/courses/{course}/fire")
async def _handle_fire_course(request: web.Request) -> web.Response:
    """Fire a held course: its items reach their stations and print now (no body)."""
    course = parse_int("course", request.match_info["course"], high=MAX_COURSE)
    order = await request.app[SERVICE].fire_course(
        request.match_info["id"], course, actor=request.get(ACTOR, "api")
    )
    return _order_json(order)


@routes.delete("/api/v1/orders/{id}")
async def _handle_delete(request: web.Request) -> web.Response:
    """Cancel the order: its open items go to processSkipped, VOID where printed."""
    reason = request.query.get("reason") or "cancelled"
    order = await request.app[SERVICE].cancel(
        request.match_info["id"], reason=reason[:500], actor=request.get(ACTOR, "api")
    )
    return _order_json(order)


@routes.get("/api/v1/endpoints")
async def _handle_endpoints(request: web.Request) -> web.Response:
    """PORTOS OrderEndpoint list from config, with what the screens need."""
    settings = request.app[SETTINGS]
    items = [
        {
            "name": e.name,
            "isActive": e.is_active,
            "type": e.type or e.kind,
            "address": e.printer.address if e.printer else None,
            "display": e.display,
            "printer": e.printer is not None,
            "autoProcess": e.auto_process,
            "timers": screen_timers(e.timers),
            "keys": e.keys,
            "settings": {},
        }
        for e in settings.endpoints
    ]
    return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})
