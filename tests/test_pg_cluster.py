"""The PostgreSQL test server: a real cluster on 127.0.0.1, a fresh database per test."""

from __future__ import annotations

import asyncpg


async def test_fresh_database_per_test(pg_url: str) -> None:
    # Each test starts from an empty database of a real server on loopback.
    conn = await asyncpg.connect(pg_url)
    try:
        assert "127.0.0.1" in pg_url
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE t (x int)")
    finally:
        await conn.close()


async def test_second_database_is_fresh_too(pg_url: str) -> None:
    # What the previous test created is not here.
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('t')") is None
    finally:
        await conn.close()
