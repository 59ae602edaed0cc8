"""The live feed: `GET /api/v1/ws?endpoint=NAME&since=SEQ`.

A new screen gets a snapshot, then every event. A screen that reconnects
with `since` gets exactly the events it missed (or a fresh snapshot when
they are too old). Each event's JSON was encoded once by the bus; the hub only
queues the same string for every screen that wants it. A screen too slow to
keep up is closed (1013) and resumes with `since`, so one stuck kiosk cannot
grow the daemon's memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from ..appkeys import BUS, SERVICE, SNAPSHOT_EXTRAS
from ..bus import Event, EventBus
from ..errors import BadRequest

log = structlog.get_logger(__name__)

QUEUE_LIMIT = 20_000
HEARTBEAT = 10.0
#: An application-level ping browsers can see: a pulled cable closes nothing, and
#: screens show "disconnected" after 2 s without any message.
PING_INTERVAL = 1.0
PING = '{"type":"ping"}'

HUB: web.AppKey[ScreenHub] = web.AppKey("screen_hub")


class ScreenClient:
    """One connected screen: its filter and its outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, endpoint: str | None) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.overflowed = False

    def wants(self, event: Event) -> bool:
        """Order events only for orders routed to this screen's endpoint."""
        return self.endpoint is None or event.endpoints is None or self.endpoint in event.endpoints

    def offer(self, text: str) -> None:
        """Queue a message, or give up on a screen that stopped reading."""
        if self.overflowed:
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(text)


class ScreenHub:
    """Fans events out to connected screens."""

    name = "screens"

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.clients: set[ScreenClient] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._pinger = asyncio.create_task(self._ping_loop(), name="ws:ping")

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL)
            for client in self.clients:
                client.offer(PING)

    async def stop(self) -> None:
        """Close every screen with 1001 (going away); they reconnect to the next run."""
        if self._unsubscribe:
            self._unsubscribe()
        if self._pinger is not None:
            self._pinger.cancel()
            await asyncio.gather(self._pinger, return_exceptions=True)
        await asyncio.gather(
            *(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for c in list(self.clients)),
            return_exceptions=True,
        )

    def health(self) -> dict[str, Any]:
        return {"ok": True, "screens": len(self.clients)}

    def _on_event(self, event: Event) -> None:
        for client in self.clients:
            if client.wants(event):
                client.offer(event.json)


def _snapshot(request: web.Request, endpoint: str | None) -> str:
    service = request.app[SERVICE]
    orders = [o.wire_json() for o in service.orders() if endpoint is None or endpoint in o.endpoint_names()]
    body: dict[str, Any] = {"type": "snapshot", "seq": request.app[BUS].seq}
    for key, provider in request.app[SNAPSHOT_EXTRAS].items():
        body[key] = provider()
    head = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return head[:-1] + ',"orders":[' + ",".join(orders) + "]}"


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"since must be a sequence number, got {raw!r}")
    return int(raw)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    """Snapshot or replay, then live events, until the screen goes away."""
    endpoint = request.query.get("endpoint") or None
    since = _since(request)
    hub = request.app[HUB]
    # No permessage-deflate: compressing is per screen (its own context), so one encode per
    # event would become one compression per screen; on a kitchen LAN bytes are cheap.
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=64 * 1024, compress=False)
    await ws.prepare(request)
    client = ScreenClient(ws, endpoint)
    # No await between choosing the start point and subscribing: nothing slips between.
    replay = None if since is None else request.app[BUS].since(since)
    if replay is None:
        client.offer(_snapshot(request, endpoint))
    else:
        for event in replay:
            if client.wants(event):
                client.offer(event.json)
    hub.clients.add(client)
    sender = asyncio.create_task(_send_loop(client), name="ws:send")
    try:
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break
            # Screens talk back over HTTP; anything they send here is ignored.
    finally:
        hub.clients.discard(client)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws


async def _send_loop(client: ScreenClient) -> None:
    while True:
        text = await client.queue.get()
        if text is None:
            log.warning("ws.too_slow", endpoint=client.endpoint)
            await client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resume with since")
            return
        try:
            await client.ws.send_str(text)
        except (ConnectionResetError, RuntimeError):
            return


def setup_ws(app: web.Application, bus: EventBus) -> ScreenHub:
    """Add the websocket route and its hub to `app`."""
    hub = ScreenHub(bus)
    app[HUB] = hub
    app.router.add_get("/api/v1/ws", handle_ws)
    return hub
