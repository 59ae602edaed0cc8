"""The load generator: tills posting orders and screens listening on websockets.

Plain asyncio in the bench's own process: tills are asyncio protocols speaking
just enough HTTP/1.1 (`_Till`), paced requests go through aiohttp, screens use
the `websockets` client's Sans-I/O protocol. Everything sent is encoded before
the clock starts, and a screen only timestamps a message and picks the order's
`externalId` out of it with a byte search — the client stays lean so the server
gets the CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

JSON_HEADERS = {"Content-Type": "application/json"}
_EXTERNAL = b'"externalId":"'
_MORE = b'"more":true'
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)")


def order_body(external_id: str) -> dict[str, Any]:
    """A PORTOS-shaped order with three items, one for each station."""
    return {
        "id": external_id,
        "deviceName": "POS1",
        "user": {"userName": "anna"},
        "ticket": {
            "id": f"T-{external_id}",
            "name": "Table 5",
            "location": {"zoneName": "Terrace", "tableName": "5"},
            "purchaseType": "walkIn",
        },
        "items": [
            {
                "id": 1,
                "plu": {"name": "Cheeseburger", "code": 101},
                "quantity": {"amount": 2, "unit": "pcs"},
                "comment": "medium rare",
                "courseNumber": 1,
                "modifiers": ["no onion", "extra cheese"],
            },
            {
                "id": 2,
                "plu": {"name": "Caesar salad", "code": 310},
                "quantity": {"amount": 1, "unit": "pcs"},
                "courseNumber": 1,
                "modifiers": ["dressing on the side"],
            },
            {
                "id": 3,
                "plu": {"name": "Pilsner", "code": 201, "group": "Drinks"},
                "quantity": {"amount": 1, "unit": "pcs"},
            },
        ],
    }


def encoded_orders(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """`count` distinct orders as (externalId, JSON bytes)."""
    return [
        (f"{prefix}-{i}", json.dumps(order_body(f"{prefix}-{i}")).encode()) for i in range(count)
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile of `values` (not necessarily sorted)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def external_id(message: bytes, field: bytes = _EXTERNAL) -> str | None:
    """The first `externalId` in a message (an order event's own), without parsing the JSON.

    `field` picks another string field (`b'"comment":"'`: an item's comment).
    """
    start = message.find(field)
    if start < 0:
        return None
    start += len(field)
    return message[start : message.find(b'"', start)].decode()


# --------------------------------------------------------------------- ingest


@dataclass
class IngestStats:
    """Throughput and per-request latency of a burst of POSTs."""

    count: int
    seconds: float
    latencies: list[float]
    errors: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else math.nan


async def ingest(
    url: str, orders: Sequence[tuple[str, bytes]], concurrency: int, *, keep_bodies: bool = False
) -> IngestStats:
    """POST every order over `concurrency` keep-alive connections, as fast as answered."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    head = (
        f"POST {target.path or '/'}{'?' + target.query if target.query else ''} HTTP/1.1\r\n"
        f"Host: {target.netloc}\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()
    latencies: list[float] = []
    errors: dict[int, int] = defaultdict(int)
    bodies: list[bytes] = []
    pending = iter(orders)
    loop = asyncio.get_running_loop()

    async def till() -> None:
        connection: _Till | None = None
        try:
            for _, body in pending:  # one shared iterator: each order is posted once
                if connection is None or connection.closed:
                    _, connection = await loop.create_connection(_Till, host, port)
                t0 = time.perf_counter()
                try:
                    status, answer = await connection.post(
                        b"%s%d\r\n\r\n%s" % (head, len(body), body)
                    )
                except ConnectionError:
                    status, answer = 0, b""  # counted, not retried: a retry could store it twice
                latencies.append(time.perf_counter() - t0)
                if status != 201:
                    errors[status] += 1
                elif keep_bodies:
                    bodies.append(answer)
        finally:
            if connection is not None:
                connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(till() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return IngestStats(len(orders), seconds, latencies, dict(errors), bodies)


class _Till(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection posting one request at a time.

    The load generator runs on the same two cores as the server it measures: aiohttp's
    client spent 0.13-0.24 ms of CPU per order there, this about a fifth of it. It reads only
    what an answer needs: the status and a Content-Length body (kds and the baselines send
    no other kind of answer to a POST; anything else fails the request).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def post(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send `request`; the future has the answer's (status, body)."""
        assert self.transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._answer is None:
            return
        headers = bytes(self._buffer[:end]).lower()
        found = _CONTENT_LENGTH.search(headers)
        if found is None:
            self._fail(ConnectionError("an answer without Content-Length"))
            return
        size = end + 4 + int(found[1])
        if len(self._buffer) < size:
            return
        status, body = int(headers[9:12]), bytes(self._buffer[end + 4 : size])
        del self._buffer[:size]
        answer, self._answer = self._answer, None
        answer.set_result((status, body))
        if b"connection: close" in headers:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("the server closed the connection"))

    def _fail(self, err: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(err)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


# --------------------------------------------------------------------- screens


class _Screen(asyncio.Protocol):
    """One websocket screen: the websockets library's Sans-I/O client on a plain asyncio transport.

    No task, queue or future per message: a frame is timestamped in
    `data_received` as it comes off the socket, so 200 screens in one process
    cost little more than the decompression (screens offer permessage-deflate,
    as browsers do).
    """

    def __init__(self, owner: Screens, url: str, deflate: bool) -> None:
        loop = asyncio.get_running_loop()
        self.owner = owner
        extensions = enable_client_permessage_deflate(None) if deflate else None
        self.protocol = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.opened: asyncio.Future[None] = loop.create_future()
        self.first: asyncio.Future[int] = loop.create_future()
        for future in (self.opened, self.first):
            # A screen that drops before anyone waits must not log "exception never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.transport: asyncio.Transport | None = None
        self.snapshot_bytes = 0
        self._parts: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    _settle(self.opened, self.protocol.handshake_exc)
                else:
                    _settle(self.opened)
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                self._parts.append(bytes(event.data))
                if event.fin:
                    message = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
                    self._parts.clear()
                    self.owner._message(self, message, now)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"screen connection lost: {exc}")
        _settle(self.opened, error)
        _settle(self.first, error)

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def close(self) -> None:
        """Send a close frame and drop the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.protocol.send_close()
            self._flush()
        except Exception:
            pass
        self.transport.close()


def _settle(
    future: asyncio.Future[Any], error: BaseException | None = None, result: Any = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Screens:
    """A set of websocket screens that timestamp each order event they receive."""

    def __init__(
        self,
        urls: Sequence[str],
        event_type: str,
        *,
        snapshot: bool,
        deflate: bool = True,
        key_field: bytes = _EXTERNAL,
    ) -> None:
        self.urls = list(urls)
        self.key_field = key_field
        self.deflate = deflate
        self.prefix = f'{{"type":"{event_type}"'.encode()
        self.snapshot = snapshot
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.expected = math.inf
        self.received = 0
        self.snapshot_bytes = 0
        self._all_in = asyncio.Event()
        self._screens: list[_Screen] = []

    async def open(self, timeout: float = 60.0) -> None:
        """Connect every screen; with `snapshot`, wait until each has its snapshot."""
        sizes = await asyncio.wait_for(
            asyncio.gather(*(self._open(url) for url in self.urls)), timeout
        )
        self.snapshot_bytes = sum(sizes)

    @property
    def compressed(self) -> bool:
        """Whether the server accepted permessage-deflate (on any screen)."""
        return any(screen.protocol.extensions for screen in self._screens)

    async def _open(self, url: str) -> int:
        uri = parse_uri(url)
        screen = _Screen(self, url, self.deflate)
        self._screens.append(screen)
        await asyncio.get_running_loop().create_connection(lambda: screen, uri.host, uri.port)
        await screen.opened
        return await screen.first if self.snapshot else 0

    def _message(self, screen: _Screen, message: bytes, now: float) -> None:
        if self.snapshot and not screen.first.done():
            if not message.startswith(b'{"type":"snapshot'):
                _settle(
                    screen.first, RuntimeError(f"expected a snapshot first, got {message[:80]!r}")
                )
                return
            # A snapshot may come in pages ("more": true on all but the last).
            screen.snapshot_bytes += len(message)
            if _MORE not in message[:256] and _MORE not in message[-64:]:
                _settle(screen.first, result=screen.snapshot_bytes)
            return
        if not message.startswith(self.prefix):
            return
        key = external_id(message, self.key_field)
        if key is not None:
            self.arrivals[key].append(now)
            self.received += 1
            if self.received >= self.expected:
                self._all_in.set()

    def expect(self, events: int) -> None:
        """Each of `events` events should reach every screen."""
        self.expected = events * len(self.urls)
        if self.received >= self.expected:
            self._all_in.set()

    async def wait(self, timeout: float) -> None:
        """Until every expected delivery arrived, or `timeout` (missing ones are counted by the caller)."""
        try:
            await asyncio.wait_for(self._all_in.wait(), timeout)
        except TimeoutError:
            pass

    def last_arrivals(self, sent: dict[str, float]) -> list[float]:
        """Per event, the delay until its last screen had it (events some screen missed: left out)."""
        return [
            max(times) - sent[key]
            for key, times in self.arrivals.items()
            if key in sent and len(times) == len(self.urls)
        ]

    def spreads(self) -> list[float]:
        """Per event, first to last screen: the fan-out itself, without what came before it."""
        return [
            max(times) - min(times)
            for times in self.arrivals.values()
            if len(times) == len(self.urls)
        ]

    def latencies(self, sent: dict[str, float]) -> tuple[list[float], int]:
        """Delivery delays of every (event, screen) and how many deliveries are missing."""
        delays: list[float] = []
        missing = 0
        for key, t0 in sent.items():
            got = self.arrivals.get(key, [])
            delays += [t - t0 for t in got]
            missing += max(0, len(self.urls) - len(got))
        return delays, missing

    async def close(self) -> None:
        """Close every screen."""
        for screen in self._screens:
            screen.close()
        await asyncio.sleep(0)  # let the transports flush their close frames


@dataclass
class Paced:
    """When each paced request was sent (by key), how long its answer took, and HTTP errors."""

    sent: dict[str, float]
    #: Seconds until the answer, by key.
    answers: dict[str, float]
    errors: dict[int, int]


async def paced(
    session: aiohttp.ClientSession, requests: Sequence[tuple[str, str, bytes]], rate: float
) -> Paced:
    """POST (key, url, body) at `rate` per second, not waiting for answers before the next."""
    sent: dict[str, float] = {}
    answers: dict[str, float] = {}
    errors: dict[int, int] = defaultdict(int)

    async def post(key: str, url: str, body: bytes) -> None:
        t0 = time.perf_counter()
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            await response.read()
            if response.status >= 300:
                errors[response.status] += 1
        answers[key] = time.perf_counter() - t0

    tasks = []
    start = time.perf_counter() + 0.05
    for i, (key, url, body) in enumerate(requests):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the till, not waiting for an effect
        sent[key] = time.perf_counter()
        tasks.append(asyncio.create_task(post(key, url, body)))
    await asyncio.gather(*tasks)
    return Paced(sent, answers, dict(errors))


@dataclass
class Run:
    """Paced requests to one server and the screens that time their events."""

    key: str
    #: Where the server's CPU milliseconds per request are recorded.
    cpu_key: str
    #: The server's process (its CPU is read).
    pid: int
    requests: list[tuple[str, str, bytes]]
    screens: Screens


def broadcasts(
    base_url: str, template: str, event_type: str, key: str, count: int
) -> list[tuple[str, str, bytes]]:
    """`count` publishes of kds's order JSON `template` to the bare broadcast, each its own id."""
    original = json.loads(template)["externalId"]
    return [
        (
            f"{key}-{i}",
            f"{base_url}/publish?type={event_type}",
            template.replace(f'"externalId":"{original}"', f'"externalId":"{key}-{i}"').encode(),
        )
        for i in range(count)
    ]


async def post_json(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body, headers=JSON_HEADERS) as response:
        if response.status >= 300:
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")


async def get_text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.text()
