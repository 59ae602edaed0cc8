"""Kitchen printers over HTTP: their state, and "retry now" after fixing one.

A failed ticket is retried with capped backoff (up to `retry_max`, 30 s by
default). When the cook has put paper in or switched the printer back on,
`POST /api/v1/printers/{endpoint}/retry` tries the waiting tickets at once.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import CLUSTER, SPOOLER
from ..errors import NotFound

routes = web.RouteTableDef()


@routes.get("/api/v1/printers")
async def _handle_list(request: web.Request) -> web.Response:
    """Every configured printer's state: QueryResult{items, count, totalCount}."""
    spooler = request.app.get(SPOOLER)
    items = spooler.printer_states() if spooler is not None else []
    cluster = request.app.get(CLUSTER)
    if cluster is not None:  # which node drives each printer (the others stand by)
        items = [{**item, "heldBy": cluster.printer_holder(item["endpoint"])} for item in items]
    return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})


@routes.post("/api/v1/printers/{endpoint}/retry")
async def _handle_retry(request: web.Request) -> web.Response:
    """Try the endpoint's waiting tickets now instead of after the backoff: 202."""
    endpoint = request.match_info["endpoint"]
    spooler = request.app.get(SPOOLER)
    if spooler is None or not spooler.has_printer(endpoint):
        raise NotFound(f"endpoint {endpoint!r} has no printer")
    spooler.kick(endpoint)
    return web.json_response({"endpoint": endpoint, "queued": spooler.queued(endpoint)}, status=202)
