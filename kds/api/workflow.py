"""Kitchen workflow routes: allergen acknowledgement, rush, moving a ticket, reports.

Handlers validate input and call the service core; the report reads facts
through `kds.reports` (archived orders from the store, live ones derived).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..appkeys import ACTOR, SERVICE, SETTINGS
from ..errors import BadRequest, NotFound
from ..reports import ReportData, build_report, report_csv
from .body import read_json, validate
from .orders import _order_json

routes = web.RouteTableDef()


class MoveBody(BaseModel):
    """`{"to": "grill2"}`: the station that takes the ticket's open items."""

    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@routes.post("/api/v1/orders/{id}/rush")
async def _handle_rush(request: web.Request) -> web.Response:
    """Rush the order: first on every station, RUSH on screens and paper."""
    if await request.read():
        await read_json(request)  # a body is optional; if sent, it must at least be JSON
    order = await request.app[SERVICE].rush(
        request.match_info["id"], actor=request.get(ACTOR, "api")
    )
    return _order_json(order)


@routes.post("/api/v1/orders/{id}/endpoints/{name}/allergens/ack")
async def _handle_allergen_ack(request: web.Request) -> web.Response:
    """The cook at this station saw the order's allergens; the ticket may now be accepted."""
    order = await request.app[SERVICE].ack_allergens(
        request.match_info["id"], request.match_info["name"], actor=request.get(ACTOR, "api")
    )
    return _order_json(order)


@routes.post("/api/v1/orders/{id}/endpoints/{name}/move")
async def _handle_move(request: web.Request) -> web.Response:
    """Move the ticket's open items from this station to `to` (TRANSFER on both printers)."""
    body = validate(MoveBody, await read_json(request))
    order = await request.app[SERVICE].move(
        request.match_info["id"],
        request.match_info["name"],
        body.to,
        actor=request.get(ACTOR, "api"),
    )
    return _order_json(order)


def _when(name: str, raw: str | None, default: datetime) -> datetime:
    if raw is None:
        return default
    if not raw:
        raise BadRequest(f"{name}: empty; leave it out for the default")
    try:
        # An unencoded "+01:00" in a query string arrives as " 01:00"; RFC 3339 allows "t", "z".
        when = datetime.fromisoformat(re.sub(r" (\d\d:\d\d)$", r"+\1", raw).upper())
    except ValueError:
        raise BadRequest(
            f"{name}: expected an ISO 8601 date or date-time, got {raw[:64]!r}"
        ) from None
    return (
        when if when.tzinfo is not None else when.replace(tzinfo=datetime.now().astimezone().tzinfo)
    )


@routes.get("/api/v1/reports")
async def _handle_reports(request: web.Request) -> web.Response:
    """Per station, per hour and per product, for orders that arrived in [from, to)."""
    query = request.query
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    end = _when("to", query.get("to"), now)
    try:
        start = _when("from", query.get("from"), end - timedelta(days=1))
    except OverflowError:
        raise BadRequest("to: too early for a report") from None
    endpoint = query.get("endpoint") or None
    if endpoint is not None and settings.endpoint(endpoint) is None:
        raise NotFound(f"endpoint: {endpoint[:64]!r} is not an endpoint of this kds")
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest(f"format: expected json or csv, got {fmt[:16]!r}")
    # An empty range (from at or after to) holds no tickets: an empty report, not an error.
    data = (
        await request.app[SERVICE].report_facts(start, end, endpoint)
        if start < end
        else ReportData()
    )
    report = build_report(
        data.tickets,
        data.products,
        late_after={e.name: e.timers.late_after for e in settings.endpoints},
        archived=data.archived,
        archived_times=data.archived_times,
    )
    report = {"from": start.isoformat(), "to": end.isoformat(), "endpoint": endpoint, **report}
    if fmt == "csv":
        return web.Response(
            text=report_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="kds-report.csv"'},
        )
    return web.json_response(report)
