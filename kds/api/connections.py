"""Connection limits: a deadline for request headers, a cap per client, room kept for new requests.

aiohttp closes a connection that waits for its next request longer than
`keepalive_timeout`, but a socket that connects and says nothing, or sends its
headers a byte at a time, held a file descriptor for an hour; 260 of them under
a limit of 256 descriptors stopped every ingest and `/healthz`. Each accepted
connection is wrapped in a `GuardedConnection` that forwards everything to
aiohttp's own protocol and adds:

* a header deadline: a request's headers must be complete `header_timeout`
  after the connection opened (or after the request's first byte);
* a cap per client address (`max_connections_per_client`; loopback exempt
  unless `limit_loopback`, since the kds box's own kiosk and tools are trusted
  and a local reverse proxy would be one client);
* a cap in all (`max_connections`, by default the open-file limit less a
  reserve for the database, printers and POS clients).

At a cap, the oldest *idle* connection (no request being handled: silent,
half-sent headers, or keep-alive) of that client, or of anyone for the total
cap, is closed to make room; only when every one is busy is the new
connection answered 503 and closed. So silent sockets can never lock out a
request, and a screen's websocket (a request in progress) is never cut.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_runner import BaseSite
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..config import ServerConfig
from .auth import _is_loopback

log = structlog.get_logger(__name__)

#: Descriptors kept for everything but client connections (database, printers, POS, logs).
RESERVED_FDS = 64
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: 82\r\n\r\n"
    b'{"error": "too_many_connections", "detail": "too many open connections; try again"}'
)


def connection_cap(configured: int) -> int:
    """The total cap: as configured, or the open-file limit less RESERVED_FDS."""
    if configured:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 0 if soft == resource.RLIM_INFINITY else max(16, soft - RESERVED_FDS)


class ConnectionGuard:
    """Counts connections per client and in all; closes idle ones to make room."""

    def __init__(self, config: ServerConfig, registry: CollectorRegistry | None = None) -> None:
        self.header_timeout = config.header_timeout
        self.per_client = config.max_connections_per_client
        self.limit_loopback = config.limit_loopback
        self.total = connection_cap(config.max_connections)
        self._open: dict[GuardedConnection, None] = {}  # oldest first
        self._per_client: dict[str, int] = {}
        self.closed = Counter(
            "kds_http_connections_closed",
            "Connections kds closed, by reason",
            ["reason"],
            registry=registry,
        )
        Gauge("kds_http_connections", "Open client connections", registry=registry).set_function(
            lambda: len(self._open)
        )

    def admit(self, conn: GuardedConnection) -> bool:
        """Register a new connection, closing an idle one at a cap; False: refuse it."""
        client = conn.client
        capped = self.per_client and (self.limit_loopback or not _is_loopback(client))
        if (
            capped
            and self._per_client.get(client, 0) >= self.per_client
            and not self._evict(lambda c: c.client == client)
        ):
            return False
        if self.total and len(self._open) >= self.total and not self._evict(lambda c: True):
            return False
        self._open[conn] = None
        self._per_client[client] = self._per_client.get(client, 0) + 1
        return True

    def forget(self, conn: GuardedConnection) -> None:
        """The connection is gone (idempotent)."""
        if self._open.pop(conn, 0) is None:
            left = self._per_client[conn.client] - 1
            if left:
                self._per_client[conn.client] = left
            else:
                del self._per_client[conn.client]

    def _evict(self, match: Callable[[GuardedConnection], bool]) -> bool:
        victim = next((c for c in self._open if match(c) and c.idle), None)
        if victim is None:
            return False
        self.forget(victim)
        victim.close("evicted")
        return True

    def protocol_factory(self, server: web.Server) -> Callable[[], GuardedConnection]:
        """What the listening socket makes per connection: aiohttp's protocol, guarded."""
        return lambda: GuardedConnection(server(), self)


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a header deadline and a place in the caps."""

    def __init__(self, inner: RequestHandler, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.client = "?"
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._admitted = False

    @property
    def idle(self) -> bool:
        """No request is being handled or waits to be (aiohttp's own notion of idle)."""
        return not (self.inner._request_in_progress or self.inner._messages)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else "?"
        if not self.guard.admit(self):
            self.guard.closed.labels("refused").inc()
            self.transport.write(REFUSED)  # type: ignore[union-attr]
            transport.close()
            return
        self._admitted = True
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)
        if not self.idle:
            self._disarm()  # the headers are in
        elif self._deadline is None and data:
            self._arm()  # the first bytes of the next request: its headers have header_timeout

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._admitted:
            self.guard.forget(self)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self.inner.resume_writing()

    def close(self, reason: str) -> None:
        """Close the connection now (counted by `reason`)."""
        self._disarm()
        self.guard.closed.labels(reason).inc()
        log.debug("http.connection_closed", reason=reason)
        self.inner.force_close()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.guard.header_timeout, self._header_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_deadline(self) -> None:
        self._deadline = None
        if self.idle:
            self.guard.forget(self)
            self.close("header_timeout")


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through a ConnectionGuard."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, guard: ConnectionGuard, **kwargs: Any
    ) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._guard = guard

    async def start(self) -> None:
        await BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
