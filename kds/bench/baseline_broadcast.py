"""The live-feed baseline: a bare aiohttp websocket broadcast.

`python -m kds.bench.baseline_broadcast --port N [--compress]` serves `GET /ws`
(permessage-deflate only with `--compress`: the bench matches what kds
negotiated) and `POST /publish?type=order.created`: the body (an order's JSON)
is wrapped once into `{"type", "seq", "order"}` and sent to every connected
socket in turn, then the request is answered. No store, no queues,
no filters — the floor for kds's ingest → screen and fan-out figures.
"""

from __future__ import annotations

import argparse

from aiohttp import web

CLIENTS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("clients", set)
COMPRESS: web.AppKey[bool] = web.AppKey("compress", bool)


class _Seq:
    value = 0


async def _handle_ws(request: web.Request) -> web.WebSocketResponse:
    """Hold the socket open and listen; everything arrives by broadcast."""
    ws = web.WebSocketResponse(compress=request.app[COMPRESS])
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    clients.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        clients.discard(ws)
    return ws


async def _handle_publish(request: web.Request) -> web.Response:
    """Encode once, send to all, answer."""
    order = await request.text()
    _Seq.value += 1
    text = f'{{"type":"{request.query.get("type", "order.created")}","seq":{_Seq.value},"order":{order}}}'
    for ws in list(request.app[CLIENTS]):
        try:
            await ws.send_str(text)
        except (ConnectionResetError, RuntimeError):
            pass
    return web.Response(text="{}", status=201, content_type="application/json")


async def _handle_ready(request: web.Request) -> web.Response:
    return web.json_response({"screens": len(request.app[CLIENTS])})


def build_app(compress: bool = False) -> web.Application:
    """The broadcast app."""
    app = web.Application()
    app[CLIENTS] = set()
    app[COMPRESS] = compress
    app.router.add_get("/ws", _handle_ws)
    app.router.add_post("/publish", _handle_publish)
    app.router.add_get("/readyz", _handle_ready)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compress", action="store_true", help="accept permessage-deflate")
    args = parser.parse_args(argv)
    web.run_app(
        build_app(args.compress), host="127.0.0.1", port=args.port, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
