"""The PORTOS simulator's HTTP API: the routes kds uses (seeds 000, 002, 004) over a `PortosState`.

`GET /orders` takes the seed-002 NData filters and `$skip/$take/$sort/$count`,
answering QueryResult (or CountQueryResult); the three status routes apply the
seed's rules; tickets can be listed, created, replaced, deleted and closed (a
closed ticket answers 403). Auth is JWT bearer (`POST /auth` → AuthResult,
tokens expire: 401) or NWS4 signing with an ApiKey. Every request under `/api/`
first meets the fault mode the simulator was set to (`kds.simulators.faults`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..faults import FaultSwitch, fault_middleware
from . import query as ndata
from .nws4 import verify as nws4_verify
from .rules import STATUSES, StatusConflict
from .state import PortosState, StatusPost

API_PREFIX = "/api"
JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str = "simulated failure") -> web.Response:
    """An error answer (PORTOS answers errors as JSON; the exact model is not in our seeds)."""
    return web.json_response({"status": status, "message": message}, status=status)


def is_api(request: web.Request) -> bool:
    """A request to the PORTOS API (not to the simulator's own `/_sim/` routes)."""
    return request.path.startswith(API_PREFIX + "/")


async def json_body(request: web.Request) -> Any:
    """The JSON body, or a 400 in PORTOS's style."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"status": 400, "message": "body is not JSON"}), content_type=JSON
        ) from exc


def ticket_args(body: dict[str, Any]) -> dict[str, Any]:
    """`PortosState.create_ticket` keyword arguments from a Ticket body."""
    return {
        "name": body.get("name"),
        "location": body.get("location"),
        "purchase_type": body.get("purchaseType", "walkIn"),
        "customer": body.get("customer"),
        "device": body.get("originDeviceName") or body.get("deviceName") or "P01",
    }


def build_app(state: PortosState, faults: FaultSwitch) -> web.Application:
    """The aiohttp app serving `state` under `/api`, faults first, then auth."""
    api = PortosApi(state)
    app = web.Application(
        middlewares=[
            api.count_middleware,
            fault_middleware(faults, applies=is_api, error=error),
            api.auth_middleware,
        ]
    )
    api.add_routes(app.router)
    return app


class PortosApi:
    """The request handlers, over one state."""

    def __init__(self, state: PortosState) -> None:
        self.state = state

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Every API route under `/api`."""
        api = API_PREFIX
        router.add_post(f"{api}/auth", self._handle_login)
        router.add_post(f"{api}/auth/refresh", self._handle_refresh)
        router.add_get(f"{api}/orders", self._handle_list_orders)
        router.add_post(f"{api}/orders", self._handle_process_orders)
        router.add_get(f"{api}/orders/{{id}}", self._handle_get_order)
        router.add_delete(f"{api}/orders/{{id}}", self._handle_delete_order)
        router.add_post(f"{api}/orders/{{id}}/status", self._handle_order_status)
        router.add_post(f"{api}/orders/{{id}}/items/{{itemId}}/status", self._handle_item_status)
        router.add_post(
            f"{api}/orders/{{id}}/endpoints/{{name}}/status", self._handle_endpoint_status
        )
        router.add_get(f"{api}/orderendpoints", self._handle_list_endpoints)
        router.add_get(f"{api}/tickets", self._handle_list_tickets)
        router.add_post(f"{api}/tickets", self._handle_create_ticket)
        router.add_get(f"{api}/tickets/{{id}}", self._handle_get_ticket)
        router.add_put(f"{api}/tickets/{{id}}", self._handle_put_ticket)
        router.add_delete(f"{api}/tickets/{{id}}", self._handle_delete_ticket)
        router.add_post(f"{api}/tickets/{{id}}/close", self._handle_close_ticket)
        router.add_get(f"{api}/plus", self._handle_list_plus)

    @web.middleware
    async def count_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count every API request, the faulty ones too."""
        if is_api(request):
            self.state.requests += 1
        return await handler(request)

    @web.middleware
    async def auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A valid bearer token or NWS4 signature on every API route but `/auth`."""
        if not is_api(request) or request.path.startswith(f"{API_PREFIX}/auth"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            if self.state.token_valid(header[7:]):
                return await handler(request)
        elif header.startswith("NWS4-HMAC-SHA256 ") and self.state.api_keys:
            body = await request.read()
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            try:
                nws4_verify(request.method, url, request.headers, body, self.state.api_keys)
            except ValueError as err:
                self.state.unauthorized += 1
                return error(401, f"bad signature: {err}")
            return await handler(request)
        self.state.unauthorized += 1
        return error(401, "missing, unknown or expired token")

    async def _handle_login(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        # PORTOS documents PascalCase keys; accept camelCase too.
        get = lambda k: body.get(k) if isinstance(body, dict) else None  # noqa: E731
        user = get("UserName") or get("userName")
        password = get("Password") or get("password") or ""
        device = get("DeviceName") or get("deviceName")
        if not user or not device:
            return error(400, "UserName and DeviceName are required")
        result = self.state.login(user, password)
        if result is None:
            return error(401, "bad credentials")
        result["user"] = {
            "id": user,
            "isVirtual": False,
            "name": user,
            "userName": user,
            "rights": ["OrderUpdate", "OrderDelete", "OrderProcess"],
            "device": {
                "name": device,
                "envName": "CashRegister",
                "settings": self.state.devices.get(device, {}),
            },
        }
        return web.json_response(result)

    async def _handle_refresh(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        result = self.state.refresh(body.get("refreshToken") if isinstance(body, dict) else None)
        if result is None:
            return error(401, "unknown refresh token")
        return web.json_response(result)

    async def _handle_list_orders(self, request: web.Request) -> web.Response:
        fields = self.state.order_fields()
        try:
            query = ndata.parse(request.query, fields)
            if not query.sort:
                query.sort = [(fields["number"].get, False)]
            page, matched = query.run(list(self.state.orders.values()))
        except ndata.QueryError as err:
            return error(400, str(err))
        if query.count_only:
            return web.json_response({"count": matched, "totalCount": matched})
        items = [self.state.order_view(o) for o in page]
        return web.json_response({"items": items, "count": len(items), "totalCount": matched})

    async def _handle_get_order(self, request: web.Request) -> web.Response:
        order = self.state.orders.get(request.match_info["id"])
        if order is None:
            return error(404, "order not found")
        return web.json_response(self.state.order_view(order))

    async def _handle_delete_order(self, request: web.Request) -> web.Response:
        try:
            self.state.delete_order(request.match_info["id"])
        except KeyError:
            return error(404, "order not found")
        return web.Response(status=204)

    async def _handle_process_orders(self, request: web.Request) -> web.Response:
        # ProcessOrdersContext {ticketIds}: processable orders of those tickets are "sent".
        body = await json_body(request)
        ticket_ids = body.get("ticketIds") if isinstance(body, dict) else None
        if not isinstance(ticket_ids, list):
            return error(400, "ticketIds is required")
        affected = self.state.process_orders(ticket_ids)
        return web.json_response(affected)

    async def _status_route(
        self,
        request: web.Request,
        route: str,
        *,
        item_id: int | None = None,
        endpoint: str | None = None,
    ) -> web.Response:
        order_id = request.match_info["id"]
        body = await json_body(request)
        status = body.get("status") if isinstance(body, dict) else None
        post = StatusPost(order_id, route, str(status), 0, item_id=item_id, endpoint=endpoint)
        self.state.status_posts.append(post)
        self.state.last_changed = []
        try:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            view = self.state.apply_status(
                order_id, str(status), item_id=item_id, endpoint=endpoint
            )
        except StatusConflict as err:
            post.answer = 409
            response = error(409, str(err))
        except ValueError as err:
            post.answer = 400
            response = error(400, str(err))
        except KeyError as err:
            post.answer = 404
            response = error(404, f"{err.args[0]} not found")
        except PermissionError as err:
            post.answer = 403
            response = error(403, str(err))
        else:
            post.answer = 200
            post.changed = self.state.last_changed
            response = web.json_response(view)
        self.state.changed()
        return response

    async def _handle_order_status(self, request: web.Request) -> web.Response:
        return await self._status_route(request, "order")

    async def _handle_item_status(self, request: web.Request) -> web.Response:
        try:
            item_id = int(request.match_info["itemId"])
        except ValueError:
            return error(400, "itemId must be an integer")
        return await self._status_route(request, "item", item_id=item_id)

    async def _handle_endpoint_status(self, request: web.Request) -> web.Response:
        return await self._status_route(request, "endpoint", endpoint=request.match_info["name"])

    async def _handle_list_endpoints(self, request: web.Request) -> web.Response:
        items = list(self.state.order_endpoints.values())
        return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})

    async def _handle_list_plus(self, request: web.Request) -> web.Response:
        items = list(self.state.plus.values())
        return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})

    async def _handle_list_tickets(self, request: web.Request) -> web.Response:
        fields = self.state.ticket_fields()
        try:
            query = ndata.parse(request.query, fields)
            page, matched = query.run(list(self.state.tickets.values()))
        except ndata.QueryError as err:
            return error(400, str(err))
        if query.count_only:
            return web.json_response({"count": matched, "totalCount": matched})
        return web.json_response({"items": page, "count": len(page), "totalCount": matched})

    async def _handle_get_ticket(self, request: web.Request) -> web.Response:
        ticket = self.state.tickets.get(request.match_info["id"])
        if ticket is None:
            return error(404, "ticket not found")
        return web.json_response(ticket)

    async def _handle_create_ticket(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            return error(400, "a Ticket object is required")
        try:
            ticket = self.state.create_ticket(
                body.get("items", []), ticket_id=body.get("id"), **ticket_args(body)
            )
        except ValueError as err:
            return error(400, str(err))
        return web.json_response(ticket, status=201)

    async def _handle_put_ticket(self, request: web.Request) -> web.Response:
        ticket_id = request.match_info["id"]
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            return error(400, "a Ticket object is required")
        try:
            if ticket_id not in self.state.tickets:
                ticket = self.state.create_ticket(
                    body.get("items", []), ticket_id=ticket_id, **ticket_args(body)
                )
                return web.json_response(ticket, status=201)
            changes = {
                k: body[k] for k in ("name", "location", "purchaseType", "customer") if k in body
            }
            self.state.update_ticket(ticket_id, body.get("items", []), **changes)
        except PermissionError as err:
            return error(403, str(err))
        except ValueError as err:
            return error(400, str(err))
        return web.json_response(self.state.tickets[ticket_id])

    async def _handle_delete_ticket(self, request: web.Request) -> web.Response:
        try:
            self.state.delete_ticket(request.match_info["id"])
        except KeyError:
            return error(404, "ticket not found")
        except PermissionError as err:
            return error(403, str(err))
        return web.Response(status=204)

    async def _handle_close_ticket(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.state.close_ticket(request.match_info["id"]))
        except KeyError:
            return error(404, "ticket not found")
        except PermissionError as err:
            return error(403, str(err))
