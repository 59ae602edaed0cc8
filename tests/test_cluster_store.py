"""What the PostgreSQL store sends the server, counted by the server (pg_stat_statements)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict

from .pg import PgCluster
from .util import base_config, order_body

ORDERS = 12
ITEMS = 3


def three_items(n: int) -> list[dict[str, Any]]:
    return [
        {"id": 1, "plu": {"name": f"Burger {n}", "code": n}, "quantity": 1},
        {"id": 2, "plu": {"name": "Salat", "code": "S-1"}, "quantity": 2, "comment": "ohne"},
        {"id": 3, "plu": {"name": "Cola", "group": "Drinks"}, "quantity": 1},
    ]


async def test_orders_committed_together_cost_one_statement_per_table(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, aiohttp_client: Any
) -> None:
    # Twelve orders of three items posted at once share group commits: each transaction
    # sends one statement per table for all its rows (a COPY; the server counts statements,
    # not round trips), never one per row; every row is stored.
    database = pg_url.rsplit("/", 1)[1]
    pg_cluster.psql("CREATE EXTENSION pg_stat_statements", database)
    daemon = Daemon(settings_from_dict(base_config(tmp_path, database={"url": pg_url})))
    client = await aiohttp_client(daemon.app)
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/orders", json=order_body(f"g{n}", items=three_items(n)))
            for n in range(ORDERS)
        )
    )
    assert [a.status for a in answers] == [201] * ORDERS
    commits = daemon.store.health()["commits"]
    counted = pg_cluster.psql(
        "SELECT substring(s.query FROM '^(?:INSERT INTO|COPY) \"?(\\w+)'), sum(s.calls),"
        " sum(s.rows)"
        " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = current_database() AND s.query ~ '^(INSERT INTO|COPY) '"
        " GROUP BY 1 ORDER BY 1",
        database,
    )
    by_table = {
        table: (int(calls), int(rows))
        for table, calls, rows in (line.split("|") for line in counted.splitlines())
    }
    for table, rows in (("orders", ORDERS), ("items", ORDERS * ITEMS)):
        calls, stored = by_table[table]
        assert stored == rows, by_table
        assert calls <= commits < rows, (table, calls, commits, by_table)
