"""Serving a simulator's aiohttp app on 127.0.0.1, with the `offline` fault mode."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .faults import OFFLINE, FaultSwitch, mode_routes


class Listener:
    """An aiohttp app on host:port that can stop listening and resume on the same port."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def start(self) -> int:
        """Listen (port 0 picks a free one); the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen()
        return self.port

    async def follow(self, faults: FaultSwitch) -> None:
        """Listen or not, as the switch's mode says (`offline`: connections refused)."""
        if faults.mode == OFFLINE:
            await self.go_offline()
        else:
            await self.go_online()

    async def go_offline(self) -> None:
        """Stop accepting connections and close the open ones; state is kept."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # Stopping the listener leaves keep-alive connections open; a dead server has none.
        server: Any = self._runner.server if self._runner is not None else None
        if server is not None:
            for connection in list(server.connections):
                connection.force_close()

    async def go_online(self) -> None:
        """Accept connections again on the same port."""
        if self._site is None and self._runner is not None:
            await self._listen()

    async def stop(self) -> None:
        """Close the server and every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class FaultyServer:
    """The fault control every HTTP simulator shares (see `faults`): set, queue, read the mode."""

    faults: FaultSwitch
    _listener: Listener

    async def set_mode(self, mode: str, *, times: int | None = None, **params: Any) -> None:
        """Switch to fault `mode` now, for the next `times` requests (None: until changed)."""
        self.faults.set(mode, times=times, **params)
        await self._listener.follow(self.faults)

    def then_mode(self, mode: str, *, times: int | None = 1, **params: Any) -> None:
        """Queue fault `mode` after the current one (`offline` cannot be queued)."""
        self.faults.then(mode, times=times, **params)

    def mode_routes(self) -> list[web.RouteDef]:
        """`/_sim/mode` (GET, POST, DELETE) for another process."""
        return mode_routes("/_sim", self.faults.state, self.set_mode)
