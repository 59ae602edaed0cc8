"""The restart baseline: a bare aiohttp server that reads a kds database's orders, then serves.

`python -m kds.bench.baseline_restart --port N --db PATH` starts Python, imports aiohttp,
reads every order of a kds SQLite database (its header JSON, its items and item endpoints
as rows) into plain dicts and lists held in memory, then serves `GET /readyz`. No settings,
validation, model objects, migrations or components — the floor that kds's restart with
the same orders is measured against, on the same machine in the same minutes, so the
ratio says what kds adds whatever the machine's speed that hour.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

from aiohttp import web

ORDERS: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("orders", dict)


def load_orders(path: str) -> dict[str, dict[str, Any]]:
    """Every order of the database by id: its header, with its items and their endpoints."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        orders = {
            order_id: json.loads(data)
            for order_id, data in conn.execute("SELECT id, data FROM orders")
        }
        items: dict[tuple[str, int], dict[str, Any]] = {}
        for order_id, item_id, name, code, amount, comment in conn.execute(
            "SELECT order_id, item_id, plu_name, plu_code, amount, comment FROM items"
        ):
            item = {
                "id": item_id,
                "name": name,
                "code": code,
                "amount": amount,
                "comment": comment,
                "endpoints": [],
            }
            orders[order_id].setdefault("items", []).append(item)
            items[order_id, item_id] = item
        for order_id, item_id, endpoint, status in conn.execute(
            "SELECT order_id, item_id, endpoint, status FROM item_endpoints"
        ):
            items[order_id, item_id]["endpoints"].append({"name": endpoint, "status": status})
        return orders
    finally:
        conn.close()


async def _handle_ready(request: web.Request) -> web.Response:
    return web.json_response({"orders": len(request.app[ORDERS])})


def build_app(db_path: str) -> web.Application:
    """The baseline app, its orders read."""
    app = web.Application()
    app[ORDERS] = load_orders(db_path)
    app.router.add_get("/readyz", _handle_ready)
    return app


def main(argv: list[str] | None = None) -> None:
    """Read the orders, then serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    web.run_app(build_app(args.db), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
