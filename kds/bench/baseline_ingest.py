"""The ingest baseline: a bare aiohttp handler that commits each order to SQLite.

`python -m kds.bench.baseline_ingest --port N --db PATH` serves `POST /orders`:
parse the JSON, insert it (WAL, `synchronous=FULL`, one commit per request),
answer 201 with the body. No validation, routing, events or group commit —
the floor that kds's durable ingest is measured against.
"""

from __future__ import annotations

import argparse
import json
import sqlite3

from aiohttp import web

SCHEMA = "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, external_id TEXT UNIQUE NOT NULL, data TEXT NOT NULL)"
DB: web.AppKey[sqlite3.Connection] = web.AppKey("db", sqlite3.Connection)


def open_db(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    """The database with the same durability settings as kds."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(SCHEMA)
    return conn


async def _handle_order(request: web.Request) -> web.Response:
    """Insert the order and commit before answering."""
    raw = await request.text()
    body = json.loads(raw)
    conn = request.app[DB]
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO orders (external_id, data) VALUES (?, ?)", (str(body["id"]), raw))
    conn.execute("COMMIT")
    return web.Response(text=raw, status=201, content_type="application/json")


async def _handle_ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(db_path: str, synchronous: str = "FULL") -> web.Application:
    """The baseline app on a fresh database at `db_path`."""
    app = web.Application()
    app[DB] = open_db(db_path, synchronous)
    app.router.add_post("/orders", _handle_order)
    app.router.add_get("/readyz", _handle_ready)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL", "EXTRA"])
    args = parser.parse_args(argv)
    web.run_app(
        build_app(args.db, args.synchronous),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
