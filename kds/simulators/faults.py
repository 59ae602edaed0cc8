"""One fault vocabulary for every fake: a named mode, for the next N requests or jobs, then online.

Every simulator — the virtual printer, PORTOS, ready2order, cheques — is told what to
get wrong the same way:

    await sim.set_mode("error", times=3, status=503)   # the next 3 requests answer 503
    sim.then_mode("garbage")                           # then one truncated JSON body
    await sim.set_mode("online")                       # behave again

`times=None` keeps a mode until it is changed; with `times=N` it applies to the next N
requests (connections, for the printer), then the next queued mode (`then_mode`) or
`online` takes over. From another process the same fields go to the simulator's
control route as JSON: `POST /_sim/mode {"mode": "error", "times": 3, "status": 503}`
(the printer's control port: `POST /mode`); `GET` answers the current mode.

The HTTP modes every POS simulator understands (`fault_middleware`):

* ``online``   behave.
* ``offline``  stop listening: connections are refused; state is kept.
* ``error``    answer HTTP `status` (500) with the POS's own error body, or `body` as text.
* ``slow``     answer `delay` seconds (0.5) late.
* ``hang``     never answer, until the mode changes or the simulator stops.
* ``drop``     close the connection without an answer.
* ``garbage``  answer 200 with a truncated JSON body.
* ``html``     answer 200 with an HTML page (a proxy's error page).

`path` limits a mode to requests whose path starts with it; other requests pass and do
not count. A simulator adds its own modes (the printer's ``paper_out``, the cheques
API's ``result``) and acts on them itself; the modes of each are in its docstring.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ONLINE = "online"
OFFLINE = "offline"
HTTP_MODES = (ONLINE, OFFLINE, "error", "slow", "hang", "drop", "garbage", "html")
#: Parameters the HTTP modes take, with their defaults.
HTTP_PARAMS: Mapping[str, Any] = {"status": 500, "delay": 0.5, "path": None, "body": None}
#: The fault a request met (None: none), for a simulator's own modes.
FAULT = web.RequestKey("fault", object)


@dataclass
class Fault:
    """A mode with its parameters, and how many more requests it applies to (None: until changed)."""

    mode: str
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The control route's view of it."""
        return {"mode": self.mode, "times": self.times, **self.params}


class FaultSwitch:
    """What a simulator is told to get wrong: the current fault, and the ones queued after it."""

    def __init__(self, modes: Collection[str], defaults: Mapping[str, Any]) -> None:
        self.modes = tuple(modes)
        self.defaults = dict(defaults)
        self.current = Fault(ONLINE)
        self.queued: collections.deque[Fault] = collections.deque()
        self.applied = 0  # requests (jobs) a fault was applied to, in all
        self._changed = asyncio.Event()

    @property
    def mode(self) -> str:
        """The current mode's name."""
        return self.current.mode

    @property
    def times(self) -> int | None:
        """How many more requests the current mode applies to (None: until changed)."""
        return self.current.times

    def param(self, name: str, fault: Fault | None = None) -> Any:
        """A parameter of `fault` (default: the current one), else its default."""
        return (fault or self.current).params.get(name, self.defaults.get(name))

    def set(self, mode: str, *, times: int | None = None, **params: Any) -> Fault:
        """Switch to `mode` now (dropping anything queued); raises ValueError for bad input."""
        fault = self._fault(mode, times, params)
        self.queued.clear()
        self._switch(fault)
        return fault

    def then(self, mode: str, *, times: int | None = 1, **params: Any) -> Fault:
        """Queue `mode` to follow once the current (and earlier queued) modes ran out."""
        if mode == OFFLINE:
            raise ValueError("offline cannot be queued: set it when the server is to go down")
        fault = self._fault(mode, times, params)
        if self.current.mode == ONLINE and not self.queued:
            self._switch(fault)
        else:
            self.queued.append(fault)
        return fault

    def take(self, path: str | None = None) -> Fault | None:
        """The fault one request (to `path`) or job meets, counting down `times`; None when online."""
        fault = self.current
        if fault.mode == ONLINE:
            return None
        scope = fault.params.get("path")
        if scope is not None and (path is None or not path.startswith(scope)):
            return None
        self.applied += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._switch(self.queued.popleft() if self.queued else Fault(ONLINE))
        return fault

    async def wait_changed(self) -> None:
        """Wait until the mode is set again (how `hang` ends)."""
        await self._changed.wait()

    def release(self) -> None:
        """Wake everything waiting on a change (on stop)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def state(self) -> dict[str, Any]:
        """Current and queued faults (the control route's answer)."""
        return {
            **self.current.to_json(),
            "queued": [f.to_json() for f in self.queued],
            "applied": self.applied,
        }

    def _switch(self, fault: Fault) -> None:
        self.current = fault
        self.release()

    def _fault(self, mode: str, times: Any, params: dict[str, Any]) -> Fault:
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(self.modes)}")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
            raise ValueError("times must be a whole number or null")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if times is not None and mode == OFFLINE:
            raise ValueError("offline takes no times: it lasts until the mode is set again")
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r}; one of {', '.join(self.defaults)}")
        params = {k: v for k, v in params.items() if v is not None}
        for name in ("delay",):
            value = params.get(name)
            if value is not None and (
                not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
            ):
                raise ValueError(f"{name} must be a number of seconds ≥ 0")
        status = params.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ValueError("status must be an HTTP status code (100-599)")
        return Fault(mode, times, params)


ErrorBody = Callable[[int], web.Response]


def fault_middleware(
    switch: FaultSwitch,
    *,
    applies: Callable[[web.Request], bool],
    error: ErrorBody,
    garbage: bytes = b'{"items": [{"id": "trunc',
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that makes the requests `applies` to meet the switch's HTTP modes.

    A mode it does not know is left to the handler, which finds it in `request[FAULT]`.
    """

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        fault = switch.take(request.path) if applies(request) else None
        request[FAULT] = fault
        if fault is None:
            return await handler(request)
        if fault.mode == "slow":
            await asyncio.sleep(switch.param("delay", fault))  # the fault itself, not a test wait
        elif fault.mode == "hang":
            await switch.wait_changed()
        elif fault.mode in ("drop", OFFLINE):
            # Close the socket mid-request: the client sees a disconnect, not an answer.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if fault.mode in ("error", "garbage", "html"):
            await request.read()  # answered at once: the body is taken like a real server's
        if fault.mode == "error":
            status, body = int(switch.param("status", fault)), switch.param("body", fault)
            if body is not None:  # a proxy's answer rather than the POS's own
                return web.Response(status=status, text=str(body), content_type="text/plain")
            return error(status)
        if fault.mode == "garbage":
            return web.Response(body=garbage, content_type="application/json")
        if fault.mode == "html":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        return await handler(request)

    return middleware


def mode_routes(
    prefix: str,
    get_state: Callable[[], dict[str, Any]],
    set_mode: Callable[..., Awaitable[Any]],
) -> list[web.RouteDef]:
    """`GET/POST/DELETE {prefix}/mode`: read, set and clear the fault mode over HTTP."""

    async def handle_get(request: web.Request) -> web.Response:
        return web.json_response(get_state())

    async def handle_post(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("mode"), str):
                raise ValueError('the body must be {"mode": NAME, "times": N, ...}')
            params = {k: v for k, v in body.items() if k != "mode"}
            await set_mode(body["mode"], **params)
        except (ValueError, TypeError) as err:
            return web.json_response({"error": "bad_request", "detail": str(err)}, status=400)
        return web.json_response(get_state())

    async def handle_delete(request: web.Request) -> web.Response:
        await set_mode(ONLINE)
        return web.json_response(get_state())

    return [
        web.get(f"{prefix}/mode", handle_get),
        web.post(f"{prefix}/mode", handle_post),
        web.delete(f"{prefix}/mode", handle_delete),
    ]
