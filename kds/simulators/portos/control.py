"""The PORTOS simulator's control surface: run it, change it, break it — from Python, HTTP or the CLI.

`PortosSimulator` is a `PortosState` (`state`) served by the API in `app` on
127.0.0.1. Tests drive it through Python (`add_plu`, `create_ticket`,
`add_items`, `close_ticket`, `delete_order`, `expire_tokens`, `wait_for`) and
tell it what to get wrong in the vocabulary every simulator shares
(`kds.simulators.faults`): `await sim.set_mode("error", times=3, status=503)`,
`"slow"`, `"hang"`, `"drop"`, `"garbage"`, `"html"`, `"offline"`, each
optionally limited to a `path` (`/api/auth/refresh`). Another process (`kds
demo`) uses the same surface over HTTP under `/_sim/`. `kds portos-sim` runs it
alone. With `set_webhook`, every new or deleted order is pushed to kds as a
signed PORTOS webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from ..faults import HTTP_MODES, HTTP_PARAMS, FaultSwitch
from ..server import FaultyServer, Listener
from .app import API_PREFIX, JSON, build_app, error, json_body, ticket_args
from .state import PortosState, now_iso

log = structlog.get_logger(__name__)


class PortosSimulator(PortosState, FaultyServer):
    """A fake PORTOS API server with a Python control surface."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        static_tokens: Iterable[str] = (),
        api_keys: dict[str, str] | None = None,
        token_ttl: float = 3600.0,
        devices: dict[str, dict[str, Any]] | None = None,
        endpoints: Iterable[str] = (),
        demo_catalog: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            users=users,
            static_tokens=static_tokens,
            api_keys=api_keys,
            token_ttl=token_ttl,
            devices=devices,
            endpoints=endpoints,
            clock=clock,
        )
        self.host = host
        self.faults = FaultSwitch(HTTP_MODES, HTTP_PARAMS)
        self.on_change = self._on_change
        self._changes = asyncio.Condition()
        self.webhook_url: str | None = None
        self.webhook_secret: str = ""
        self.webhooks_sent: list[tuple[str, int]] = []  # (event, HTTP status or 0 when unreachable)
        self._background: set[asyncio.Task[None]] = set()
        self.app = build_app(self, self.faults)
        self.app.add_routes(self._control_routes())
        self._listener = Listener(self.app, host, port)
        if demo_catalog:
            self.load_demo_catalog()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port it listens on (0 until started, when asked for any)."""
        return self._listener.port

    @property
    def url(self) -> str:
        """The API base URL (what kds's `base_url` points at)."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def root(self) -> str:
        """The server root (the `/_sim/` control routes live here)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one)."""
        await self._listener.start()

    async def stop(self) -> None:
        """Stop listening and drop every connection (releasing hung requests)."""
        for task in list(self._background):
            task.cancel()
        self.faults.release()
        await self._listener.stop()

    # ------------------------------------------------------------------ changes: waiters, webhooks

    def _on_change(self, event: str | None, order_id: str | None) -> None:
        self._spawn(self._notify())
        if event is not None and order_id is not None and self.webhook_url is not None:
            self._spawn(self._send_webhook(event, order_id))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()  # not running in a loop (setup before start): nobody is waiting
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _notify(self) -> None:
        async with self._changes:
            self._changes.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (bounded) until `predicate()` holds; it is re-checked on every change."""

        async def _wait() -> None:
            async with self._changes:
                await self._changes.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    def set_webhook(self, url: str | None, secret: str = "") -> None:
        """Deliver order webhooks (signed with X-PORTOS-WEBHOOK-SIGNATURE) to `url`."""
        self.webhook_url, self.webhook_secret = url, secret

    async def _send_webhook(self, event: str, order_id: str) -> None:
        body = json.dumps({"event": event, "data": {"id": order_id}, "date": now_iso()}).encode()
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": JSON, "X-PORTOS-WEBHOOK-SIGNATURE": signature}
        status = 0
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(self.webhook_url or "", data=body, headers=headers) as resp:
                    status = resp.status
        except (TimeoutError, aiohttp.ClientError):
            pass  # PORTOS does not retry here either; the poll is the net
        self.webhooks_sent.append((event, status))
        await self._notify()

    # ------------------------------------------------------------------ traffic

    async def feed(self, every: float, *, seed: int | None = None, max_open: int = 6) -> None:
        """Act like a busy till (for `kds demo`): open tickets, add rounds, close tickets, forever."""
        rng = random.Random(seed)
        if not self.plus:
            self.load_demo_catalog()
        codes = sorted(self.plus)
        tables = [("Sála", str(n)) for n in range(1, 9)] + [("Terasa", str(n)) for n in range(1, 5)]
        comments = [
            None,
            None,
            None,
            "bez cibule",
            "extra pikantné",
            "alergia: orechy",
            "medium rare",
        ]
        while True:
            await asyncio.sleep(every)
            open_ = [t for t in self.tickets.values() if t["state"] == "open"]
            roll = rng.random()
            items = [
                {
                    "pluCode": rng.choice(codes),
                    "quantity": rng.choice([1, 1, 1, 2, 3]),
                    "comment": rng.choice(comments),
                }
                for _ in range(rng.randint(1, 4))
            ]
            if open_ and (len(open_) >= max_open or roll < 0.25):
                self.close_ticket(rng.choice(open_)["id"])
            elif open_ and roll < 0.5:
                self.add_items(rng.choice(open_)["id"], items)
            else:
                takeaway = rng.random() < 0.3
                zone, table = rng.choice(tables)
                self.create_ticket(
                    items,
                    name=f"Objednávka {len(self.tickets) + 1}" if takeaway else f"Stôl {table}",
                    location=None if takeaway else {"zoneName": zone, "tableName": table},
                    purchase_type="takeAway" if takeaway else "walkIn",
                )

    # ------------------------------------------------------------------ /_sim/ control routes

    def _control_routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/plus", self._handle_sim_plu),
            web.post("/_sim/tickets", self._handle_sim_ticket),
            web.post("/_sim/tickets/{id}/items", self._handle_sim_items),
            web.post("/_sim/tickets/{id}/close", self._handle_sim_close),
            web.post("/_sim/orders", self._handle_sim_put_order),
            web.delete("/_sim/orders/{id}", self._handle_sim_delete),
            web.post("/_sim/endpoints/{name}", self._handle_sim_endpoint),
            web.post("/_sim/expire-tokens", self._handle_sim_expire_tokens),
            web.get("/_sim/state", self._handle_sim_state),
            *self.mode_routes(),
        ]

    async def _handle_sim_plu(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("code"), int)
            or not body.get("name")
        ):
            return error(400, "a Plu with an integer code and a name is required")
        plu = self.add_plu(
            body["code"],
            str(body["name"]),
            body.get("orderEndpointNames", []),
            course_number=body.get("courseNumber"),
            category=body.get("articleCategoryLabel", "FOD"),
        )
        return web.json_response(plu)

    async def _handle_sim_ticket(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            ticket = self.create_ticket(body.get("items", []), **ticket_args(body))
        except ValueError as err:
            return error(400, str(err))
        orders = [o for o in self.orders.values() if o["ticket"]["id"] == ticket["id"]]
        return web.json_response({"ticket": ticket, "order": orders[-1] if orders else None})

    async def _handle_sim_items(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            order = self.add_items(request.match_info["id"], body.get("items", []))
        except KeyError:
            return error(404, "ticket not found")
        except PermissionError as err:
            return error(403, str(err))
        except ValueError as err:
            return error(400, str(err))
        return web.json_response({"order": order})

    async def _handle_sim_close(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.close_ticket(request.match_info["id"]))
        except KeyError:
            return error(404, "ticket not found")
        except PermissionError as err:
            return error(403, str(err))

    async def _handle_sim_put_order(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            return error(400, "an Order object is required")
        return web.json_response(self.put_order(body))

    async def _handle_sim_delete(self, request: web.Request) -> web.Response:
        try:
            self.delete_order(request.match_info["id"])
        except KeyError:
            return error(404, "order not found")
        return web.Response(status=204)

    async def _handle_sim_endpoint(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        self.set_endpoint_active(request.match_info["name"], bool(body.get("isActive", True)))
        return web.json_response(self.order_endpoints[request.match_info["name"]])

    async def _handle_sim_expire_tokens(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.Response(status=204)

    async def _handle_sim_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "orders": [self.order_view(o) for o in self.orders.values()],
                "tickets": list(self.tickets.values()),
                "deletedOrders": sorted(self.deleted_orders),
                "statusPosts": [p.__dict__ for p in self.status_posts],
                "requests": self.requests,
                "fault": self.faults.state(),
            }
        )


# --------------------------------------------------------------------------- CLI


def register(subparsers: Any) -> None:
    """Add `kds portos-sim` to the CLI."""
    parser = subparsers.add_parser(
        "portos-sim", help="run a simulated PORTOS server (for demos and tests)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--user", default="kds:kds", help="USER:PASSWORD accepted by POST /api/auth"
    )
    parser.add_argument(
        "--token", action="append", default=[], help="a static bearer token to accept (repeatable)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="CLIENT_ID:SECRET for NWS4 signing (repeatable)",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="seconds an issued token is valid"
    )
    parser.add_argument(
        "--default-endpoint", default="kitchen", help="DefaultOrderEndpointName of device P01"
    )
    parser.add_argument(
        "--no-demo-catalog", action="store_true", help="start without the demo PLUs"
    )
    parser.add_argument(
        "--feed",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="act like a busy till: a ticket change every SECONDS (0: off)",
    )
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    user, _, password = args.user.partition(":")
    keys = dict(k.split(":", 1) for k in args.api_key if ":" in k)
    sim = PortosSimulator(
        host=args.host,
        port=args.port,
        users={user: password},
        static_tokens=args.token,
        api_keys=keys,
        token_ttl=args.token_ttl,
        devices={"P01": {"DefaultOrderEndpointName": args.default_endpoint}},
        demo_catalog=not args.no_demo_catalog,
    )

    async def _main() -> None:
        await sim.start()
        print(f"PORTOS simulator at {sim.url} (control routes under {sim.root}/_sim/)", flush=True)
        try:
            await (sim.feed(args.feed) if args.feed > 0 else asyncio.Event().wait())
        finally:
            await sim.stop()

    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
    return 0
