"""The live feed: `GET /api/v1/ws?endpoint=NAME&since=SEQ`.

A new screen gets a snapshot, then every event. A screen that reconnects
with `since` gets exactly the events it missed (or a fresh snapshot when
they are too old). Each event's JSON was encoded once by the bus; the hub only
queues the same bytes for every screen that wants it. A screen that stops
keeping up — more than `queue_limit` messages waiting, one send stalled for
`send_timeout`, or no answer to a ping within `heartbeat` — is sent close 1013
(try again later) and resumes with `since`, so one stuck kiosk cannot grow the
daemon's memory. If the close frame is not taken within `close_grace` (the
peer is gone), the link is cut.

Snapshots are sent in pages of about 256 KB (`{"type": "snapshot", …, "more":
true}`, then `{"type": "snapshot.more", …}` until `"more": false`), each awaited
before the next, so 50 screens reconnecting to 10,000 open orders hold a page
each in the daemon instead of a whole copy each. The encoded pages are shared
by every screen of the same endpoint while the sequence number stands still.
They are built a page at a time by a task of the hub, the loop free between
pages: 50,000 open orders are seconds of encoding, and screens already connected
must answer their pings meanwhile. The orders are those open when the screen
connected; one that changes before its page is built is sent as it is then (the
event that follows is no newer, and screens never go back to an older version).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from ..appkeys import BUS, SERVICE, SETTINGS, SNAPSHOT_EXTRAS
from ..bus import Event, EventBus
from ..clock import Clock, SystemClock
from ..contracts import EventType
from ..errors import BadRequest
from ..memory import release_free_memory
from ..model import Order
from ..tasks import TaskSupervisor
from .params import parse_int
from .views import View, private_event, view_of

log = structlog.get_logger(__name__)

#: An application-level ping browsers can see: a pulled cable closes nothing, and
#: screens show "disconnected" after 2 s without any message. A screen gets one when it was
#: sent nothing else for PING_INTERVAL at most (checked every half interval): one that is
#: being sent events needs none, and a busy fan-out is not interrupted by a ping per screen.
PING_INTERVAL = 1.0
PING = json.dumps({"type": EventType.PING}, separators=(",", ":")).encode()
#: The supervisor task that offers PING to every screen.
PINGER = "screens:ping"
PAGE_BYTES = 256 * 1024
#: The supervisor tasks that build snapshot pages: `screens:snapshot:<view>@<seq>`.
SNAPSHOT_TASK = "screens:snapshot"

HUB: web.AppKey[ScreenHub] = web.AppKey("screen_hub")


@dataclass(frozen=True)
class ScreenLimits:
    """How long and how far a screen may fall behind before it is closed."""

    #: Messages waiting for one screen.
    queue_limit: int = 20_000
    #: One send may wait this long for the screen to read.
    send_timeout: float = 10.0
    #: A ping (sent every heartbeat/2) must be answered within this.
    heartbeat: float = 10.0
    #: For the 1013 close frame to leave before the link is cut.
    close_grace: float = 2.0


def text_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, uncompressed websocket text frame (RFC 6455 §5.2).

    A server's frame is the same bytes for every screen, so an event is framed once.
    """
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, size) + payload


_FIN_TEXT = 0x81  # FIN + opcode 1 (text)
PING_FRAME = text_frame(PING)
#: A websocket ping with no payload (RFC 6455 §5.5.2): the watchdog's heartbeat, the same bytes
#: for every screen.
PING_CONTROL_FRAME = bytes((0x89, 0x00))


def sees(view: View, event: Event) -> bool:
    """Whether screens of `view` get `event`: order events only for orders routed to its endpoints."""
    endpoints = view.endpoints
    return endpoints is None or event.endpoints is None or not endpoints.isdisjoint(event.endpoints)


class ScreenClient:
    """One connected screen: its filter, its outgoing queue and how far behind it is.

    A screen that has taken everything so far (its sender waits on an empty queue and
    its socket's buffer is empty) gets a message written at once, as the bus publishes
    it: one write per screen instead of waking a task per screen. Any other screen's
    messages go through its queue and sender, in order, with backpressure.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        view: View,
        limits: ScreenLimits,
        clock: Clock,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        #: The sender waits on an empty queue with nothing in hand (set only by `_send_loop`).
        self.idle = False
        self.view = view
        self.endpoint = ",".join(sorted(view.endpoints)) if view.endpoints is not None else None
        self.limits = limits
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        #: Set when the screen must be closed at once (its queue overflowed).
        self.overflowed = asyncio.Event()
        self.clock = clock
        self.heard = clock.monotonic()  # last frame from the screen (a pong, at least)
        self.sending_since: float | None = None  # a send in progress waits for the screen
        #: Why the watchdog is closing this screen (1013), once it decided to.
        self.closing: str | None = None
        #: Messages that waited in the queue (not written at once): the hub sums them.
        self.queued = 0
        #: Offered a message since the ping loop last looked (then it needs no ping).
        self.sent = False

    def wants(self, event: Event) -> bool:
        """Order events only for orders routed to this screen's endpoints."""
        return sees(self.view, event)

    def offer_event(self, event: Event) -> None:
        """Queue an event as this screen may see it (a viewer's without personal data)."""
        self.offer(private_event(event.payload) if self.view.private else event.payload)

    def caught_up(self) -> bool:
        """Whether a message may be written now: nothing waits before it, the socket keeps up."""
        transport = self.transport
        return (
            self.idle
            and self.queue.empty()  # a woken sender has not taken its message yet
            and self.closing is None
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() == 0
            and not self.ws.closed
        )

    def offer(self, payload: bytes, framed: bytes | None = None) -> None:
        """Send a message (`framed`: its frame, shared between screens), or queue it, or mark
        a screen that stopped reading for closing."""
        self.sent = True
        if self.overflowed.is_set():
            return
        if self.caught_up():
            assert self.transport is not None
            self.transport.write(text_frame(payload) if framed is None else framed)
            return
        if self.queue.qsize() >= self.limits.queue_limit:
            self.overflowed.set()
            return
        self.queue.put_nowait(payload)
        self.queued += 1

    def ping(self) -> None:
        """A websocket ping (its pong makes the screen heard), written at once: it never waits
        for a screen that stopped reading, so it needs no task of its own."""
        transport = self.transport
        if transport is not None and not transport.is_closing() and not self.ws.closed:
            transport.write(PING_CONTROL_FRAME)

    def lagging(self) -> str | None:
        """Why this screen is too slow to keep, or None."""
        now = self.clock.monotonic()
        if self.overflowed.is_set():
            return f"more than {self.limits.queue_limit} messages waiting"
        if self.sending_since is not None and now - self.sending_since > self.limits.send_timeout:
            return f"a send waited over {self.limits.send_timeout:g}s"
        if now - self.heard > self.limits.heartbeat:
            return f"no answer to a ping within {self.limits.heartbeat:g}s"
        return None


class SnapshotPages:
    """The encoded pages of one snapshot as they are built (a class so the hub can hold it weakly)."""

    __slots__ = ("__weakref__", "_grew", "done", "failed", "pages", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.pages: list[bytes] = []
        self.done = False
        self.failed = False
        self._grew = asyncio.Event()

    def add(self, page: bytes, *, last: bool) -> None:
        """Append a built page (`last`: the snapshot is complete)."""
        self.pages.append(page)
        self.done = last
        self._wake()

    def fail(self) -> None:
        """The build stopped before its last page: screens waiting for it are closed."""
        self.done = self.failed = True
        self._wake()

    def _wake(self) -> None:
        # A fresh event per page: every waiter holds the one that is set now.
        grew, self._grew = self._grew, asyncio.Event()
        grew.set()

    async def stream(self) -> AsyncIterator[bytes]:
        """Every page in order, waiting for those not yet built."""
        index = 0
        while True:
            while index >= len(self.pages):
                if self.failed:
                    raise SnapshotFailed
                if self.done:
                    return
                await self._grew.wait()
            yield self.pages[index]
            index += 1


class SnapshotFailed(Exception):
    """A snapshot's pages could not be built (logged where it happened)."""


class ScreenHub:
    """Fans events out to connected screens."""

    name = "screens"

    def __init__(
        self, bus: EventBus, supervisor: TaskSupervisor, clock: Clock | None = None
    ) -> None:
        self.bus = bus
        self.supervisor = supervisor
        #: Pings, heartbeats and send deadlines are measured on this clock.
        self.clock: Clock = clock or SystemClock()
        self.clients: set[ScreenClient] = set()
        #: The same screens by what they see: an event is filtered and framed once per view.
        self._views: dict[View, set[ScreenClient]] = {}
        self.limits = ScreenLimits()
        self._unsubscribe: Callable[[], None] | None = None
        # Pages shared by screens that connect at the same seq (say, all of them after a
        # restart); weakly held, so they are freed once the last such screen has them.
        self._snapshots: weakref.WeakValueDictionary[View, SnapshotPages] = (
            weakref.WeakValueDictionary()
        )
        self._building: set[asyncio.Task[None]] = set()  # one per snapshot being built
        self._queued_gone = 0  # `ScreenClient.queued` of the screens that left

    def snapshot_pages(self, request: web.Request, view: View) -> SnapshotPages:
        """The current snapshot for `view`, paged and encoded (shared per seq), as it is built."""
        seq = self.bus.seq
        cached = self._snapshots.get(view)
        if cached is not None and cached.seq == seq and not cached.failed:
            return cached
        snapshot = SnapshotPages(seq)
        self._snapshots[view] = snapshot
        # The orders and the first page's extras as of `seq`; the encoding happens page by page.
        task = self.supervisor.spawn(
            f"{SNAPSHOT_TASK}:{_view_label(view)}@{seq}",
            _build_pages(snapshot, _first_head(request, seq), request.app[SERVICE].orders(), view),
        )
        self._building.add(task)
        task.add_done_callback(self._building.discard)
        # When the last screen has its pages, give the memory back (see kds.memory).
        weakref.finalize(snapshot, asyncio.get_running_loop().call_soon, release_free_memory)
        return snapshot

    def join(self, client: ScreenClient) -> None:
        """Send `client` every event from now on."""
        self.clients.add(client)
        self._views.setdefault(client.view, set()).add(client)

    def leave(self, client: ScreenClient) -> None:
        """Forget a screen that went away (its count of queued messages stays in the sum)."""
        self.clients.discard(client)
        group = self._views.get(client.view)
        if group is not None:
            group.discard(client)
            if not group:
                del self._views[client.view]
        self._queued_gone += client.queued

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self.supervisor.spawn(PINGER, self._ping_loop, restart=True)

    async def _ping_loop(self) -> None:
        while True:
            await self.clock.sleep(PING_INTERVAL / 2)
            for client in self.clients:
                if client.sent:  # it had a message in this half interval: the link is alive
                    client.sent = False
                else:
                    client.offer(PING, PING_FRAME)

    async def stop(self) -> None:
        """Close every screen with 1001 (going away); they reconnect to the next run."""
        if self._unsubscribe:
            self._unsubscribe()
        await self.supervisor.cancel(PINGER)
        for task in list(self._building):
            task.cancel()
        await asyncio.gather(
            *(
                c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                for c in list(self.clients)
            ),
            return_exceptions=True,
        )

    def health(self) -> dict[str, Any]:
        # snapshotsSending: snapshots whose pages some screen is still being sent.
        # snapshotsBuilding: snapshots whose pages are still being encoded.
        return {
            "ok": True,
            "screens": len(self.clients),
            "snapshotsSending": len(self._snapshots),
            "snapshotsBuilding": len(self._building),
            # Messages that had to wait in a screen's queue (a screen behind, or still taking
            # its snapshot) instead of being written at once: near 0 while screens keep up.
            "queued": self._queued_gone + sum(c.queued for c in self.clients),
        }

    def _on_event(self, event: Event) -> None:
        # Filtered per view, encoded and framed once (once more for viewers, who see no
        # personal data); per screen only the write, or its queue.
        public = private = None
        for view, group in self._views.items():
            if not sees(view, event):
                continue
            if view.private:
                private = private or _framed(private_event(event.payload))
                payload, framed = private
            else:
                public = public or _framed(event.payload)
                payload, framed = public
            for client in group:
                client.offer(payload, framed)


def _framed(payload: bytes) -> tuple[bytes, bytes]:
    return payload, text_frame(payload)


def _first_head(request: web.Request, seq: int) -> str:
    """The first page's JSON up to its orders: type, seq and the extras (printers, alerts)."""
    first: dict[str, Any] = {"type": EventType.SNAPSHOT, "seq": seq}
    for key, provider in request.app[SNAPSHOT_EXTRAS].items():
        first[key] = provider()
    return json.dumps(first, separators=(",", ":"), ensure_ascii=False)[:-1]


def _view_label(view: View) -> str:
    """The view in a task name: its endpoints (or "all"), and "private" for viewer screens."""
    label = ",".join(sorted(view.endpoints)) if view.endpoints is not None else "all"
    return label + ("+private" if view.private else "")


def _page(head: str, orders: list[str], *, more: bool) -> bytes:
    return f'{head},"orders":[{",".join(orders)}],"more":{"true" if more else "false"}}}'.encode()


async def _build_pages(
    snapshot: SnapshotPages, head: str, orders: Iterator[Order], view: View
) -> None:
    """Encode the orders `view` shows into pages of about PAGE_BYTES, yielding between pages."""
    more_head = json.dumps(
        {"type": EventType.SNAPSHOT_MORE, "seq": snapshot.seq}, separators=(",", ":")
    )[:-1]
    page: list[str] = []
    size = 0
    try:  # a failure is the supervisor's to log and show on /readyz
        for order in orders:
            if not view.shows(order):
                continue
            text = view.order_json(order)
            if size and size + len(text) > PAGE_BYTES:
                snapshot.add(_page(head, page, more=True), last=False)
                head, page, size = more_head, [], 0
                await asyncio.sleep(0)  # pongs, other screens and requests between pages
            page.append(text)
            size += len(text)
        snapshot.add(_page(head, page, more=False), last=True)
    finally:
        if not snapshot.done:
            snapshot.fail()


def _endpoint(request: web.Request) -> str | None:
    """The `endpoint` filter; an endpoint kds does not run is a 400, not a feed that stays empty."""
    name = request.query.get("endpoint") or None
    if name is not None and request.app[SETTINGS].endpoint(name) is None:
        known = ", ".join(e.name for e in request.app[SETTINGS].endpoints)
        raise BadRequest(f"unknown endpoint {name!r}; known: {known}")
    return name


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    return parse_int("since", raw, high=2**63 - 1)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    """Snapshot or replay, then live events, until the screen goes away."""
    view = view_of(request, _endpoint(request))
    since = _since(request)
    hub = request.app[HUB]
    # No permessage-deflate: compressing is per screen (its own context), so one encode per
    # event would become one compression per screen; on a kitchen LAN bytes are cheap.
    # Our own heartbeat (the watchdog): aiohttp's drops a silent screen with no close frame.
    ws = web.WebSocketResponse(autoping=False, max_msg_size=64 * 1024, compress=False)
    await ws.prepare(request)
    # The socket's own transport, whatever its class (uvloop's are not asyncio.Transport).
    client = ScreenClient(ws, view, hub.limits, hub.clock, request.transport)
    # No await between choosing the start point and subscribing: nothing slips between.
    replay = None if since is None else request.app[BUS].since(since)
    snapshot = hub.snapshot_pages(request, view) if replay is None else None
    for event in replay or []:
        if client.wants(event):
            client.offer_event(event)
    hub.join(client)
    # Sender, reader and watchdog live exactly as long as this handler (not supervisor tasks:
    # there are three per screen, and they end with it).
    async with asyncio.TaskGroup() as group:
        sender = group.create_task(_send_loop(client, snapshot), name="ws:send")
        reader = group.create_task(_read_loop(client), name="ws:read")
        watchdog = group.create_task(
            _watchdog(client, sender, reader, request.transport), name="ws:watchdog"
        )
        del snapshot  # the sender holds it only until its pages are out
        try:
            await asyncio.wait({reader})  # the screen left, or the watchdog stopped reading
        finally:
            hub.leave(client)
            sender.cancel()
            if client.closing is None:
                watchdog.cancel()  # the screen left by itself; a 1013 in progress is seen through
    return ws


async def _read_loop(client: ScreenClient) -> None:
    """Note every frame from the screen (a pong, at least) until it goes away."""
    ws = client.ws
    async for msg in ws:
        client.heard = client.clock.monotonic()
        if msg.type is WSMsgType.PING:
            await ws.pong(msg.data)
        elif msg.type is WSMsgType.ERROR:
            break
        # Screens talk back over HTTP; anything else they send here is ignored.


async def _send_loop(client: ScreenClient, snapshot: SnapshotPages | None) -> None:
    """The snapshot pages first (each awaited: backpressure), then queued events."""
    ws = client.ws
    clock = client.clock

    async def send(payload: bytes) -> None:
        client.sending_since = clock.monotonic()
        await ws.send_frame(payload, WSMsgType.TEXT)
        client.sending_since = None

    try:
        if snapshot is not None:
            try:
                async for page in snapshot.stream():
                    await send(page)
            except SnapshotFailed:
                await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"snapshot failed")
                return
            snapshot = None  # let the shared pages go once every screen has them
        while True:
            client.idle = True  # from now on the hub may write to this screen directly
            try:
                batch = [await client.queue.get()]
            finally:
                client.idle = False
            while not client.queue.empty():  # a burst costs one wake-up per screen
                batch.append(client.queue.get_nowait())
            for payload in batch:
                if client.overflowed.is_set():
                    return  # the watchdog closes it; the rest is resumed with since
                await send(payload)
    except (ConnectionError, RuntimeError):
        return


async def _watchdog(
    client: ScreenClient,
    sender: asyncio.Task[None],
    reader: asyncio.Task[None],
    transport: asyncio.BaseTransport | None,
) -> None:
    """Ping the screen; once it lags (see ScreenLimits), close it with 1013."""
    limits = client.limits
    clock = client.clock
    period = min(limits.heartbeat, limits.send_timeout) / 2
    while (why := client.lagging()) is None:
        client.ping()
        # A timeout scope, not wait_for: no task per screen per period (1,000 screens, 5 s).
        with contextlib.suppress(TimeoutError):
            async with clock.timeout(period):
                await client.overflowed.wait()
    # Recorded, not re-derived: the close itself arrives as a frame and makes the screen "heard".
    client.closing = why
    log.warning("ws.too_slow", endpoint=client.endpoint, reason=why)
    sender.cancel()  # it may wait on a screen that reads nothing; queued events are dropped
    # close() itself reads on until the screen's close reply: pongs it still sends for earlier
    # pings are taken, not answered with a reset that would lose the close frame on its way.
    reader.cancel()
    await asyncio.wait({reader})
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        await clock.wait_for(
            client.ws.close(
                code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resume with since"
            ),
            limits.close_grace,
        )
    # The close frame may still sit in the socket's buffer: the peer has the grace to read it.
    if transport is not None:
        clock.call_later(limits.close_grace, transport.abort)


def setup_ws(
    app: web.Application, bus: EventBus, supervisor: TaskSupervisor, clock: Clock | None = None
) -> ScreenHub:
    """Add the websocket route and its hub to `app`."""
    hub = ScreenHub(bus, supervisor, clock)
    app[HUB] = hub
    app.router.add_get("/api/v1/ws", handle_ws)
    return hub
