"""The PostgreSQL ingest baseline: a bare aiohttp handler that commits each order with asyncpg.

`python -m kds.bench.baseline_pg_ingest --port N --db URL` serves `POST /orders`:
parse the JSON, insert it (one transaction per request on a pool), answer 201
with the body. No validation, routing, events or group commit — the floor that
kds's durable ingest on PostgreSQL is measured against.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

SCHEMA = "CREATE TABLE IF NOT EXISTS orders (id BIGSERIAL PRIMARY KEY, external_id TEXT UNIQUE NOT NULL, data TEXT NOT NULL)"
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
#: Connections the handler commits on (concurrent commits share WAL flushes, as kds's group does).
POOL_SIZE = 16


async def _handle_order(request: web.Request) -> web.Response:
    """Insert the order; the answer goes out once PostgreSQL committed it."""
    raw = await request.text()
    body = json.loads(raw)
    await request.app[POOL].execute(
        "INSERT INTO orders (external_id, data) VALUES ($1, $2)", str(body["id"]), raw
    )
    return web.Response(text=raw, status=201, content_type="application/json")


async def _handle_ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(url: str) -> web.Application:
    """The baseline app on the (fresh) database at `url`."""
    app = web.Application()

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        await app[POOL].execute(SCHEMA)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool)
    app.router.add_post("/orders", _handle_order)
    app.router.add_get("/readyz", _handle_ready)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    web.run_app(build_app(args.db), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
