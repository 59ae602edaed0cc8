"""`kds migrate`: bring the database's schema up to date, without starting kds.

Both backends migrate by themselves when kds starts; this runs the same
numbered migrations on their own (before a rolling update of several nodes on
one PostgreSQL database, or to check a database), then says where it stands.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from . import open_store


def register(subparsers: Any) -> None:
    """Add `kds migrate` to the command line."""
    parser = subparsers.add_parser("migrate", help="bring the database schema up to date")
    parser.add_argument("--config", default="config.toml", type=Path, help="path of config.toml")
    parser.add_argument(
        "--db", help="database path or postgresql:// URL (overrides [database] path / url)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..cli import _load

    settings = _load(args)
    database = settings.database
    where = database.url or database.path

    async def migrate() -> None:
        store = open_store(
            database.path,
            synchronous=database.synchronous,
            url=database.url,
            site=settings.node.site,
        )
        await store.start()  # applies the migrations not yet run (under a lock on PostgreSQL)
        await store.stop()

    asyncio.run(migrate())
    if database.url is not None:
        from .postgres import MIGRATIONS
    else:
        from .migrations import MIGRATIONS
    print(f"{_redacted(where)}: schema at version {len(MIGRATIONS)}")
    return 0


def _redacted(where: str) -> str:
    """A database URL without its password (never printed)."""
    scheme, sep, rest = where.partition("://")
    if not sep or "@" not in rest:
        return where
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
