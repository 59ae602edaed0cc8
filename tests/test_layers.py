"""The core's layers hold: SQL lives only in the store package, and the state machine,
model and contracts stay pure.

A query written in the service (or a source) would tie it to one database; the
PostgreSQL store could then not fill the `OrderStore` seam without edits elsewhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

KDS = Path(__file__).resolve().parent.parent / "kds"
STORE = KDS / "store"
#: `kds bench` tools: a deliberately naive SQLite writer kds is compared against, and the
#: seeding of a database with report rows (a benchmark's setup, not kds at work).
BENCH = KDS / "bench"
#: Several nodes on PostgreSQL (issue 18): the event bus over LISTEN/NOTIFY and advisory locks
#: are the cluster's own queries, not the order store's (the order store's SQL is in kds/store).
CLUSTER = KDS / "cluster"
SQL = re.compile(
    r"^\s*(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA)\b",
    re.IGNORECASE | re.DOTALL,
)
DB_CALLS = {"execute", "executemany", "executescript", "fetchall", "fetchone", "fetch_tuples"}
DB_MODULES = {"sqlite3", "aiosqlite", "asyncpg", "psycopg"}
#: Modules that must not do I/O (nor import what does).
PURE = ["model.py", "states.py", "contracts.py", "interning.py"]
IO_MODULES = DB_MODULES | {"aiohttp", "asyncio", "socket", "structlog", "kds.store", "kds.bus"}


def _outside_store() -> list[Path]:
    return sorted(p for p in KDS.rglob("*.py") if not {STORE, BENCH, CLUSTER} & set(p.parents))


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = ("kds." if node.level else "") + (node.module or "")
            names.append(module)
    return names


@pytest.mark.parametrize("path", _outside_store(), ids=lambda p: str(p.relative_to(KDS)))
def test_sql_lives_only_in_the_store_package(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = [
        f"line {node.lineno}: {node.value[:40]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)
    ]
    found += [
        f"line {node.lineno}: .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in DB_CALLS
    ]
    found += [f"imports {m}" for m in _imports(tree) if m.split(".")[0] in DB_MODULES]
    assert not found, f"{path.relative_to(KDS)} speaks SQL outside kds/store: {found}"


@pytest.mark.parametrize("name", PURE)
def test_pure_core_modules_import_no_io(name: str) -> None:
    tree = ast.parse((KDS / name).read_text(encoding="utf-8"))
    bad = [m for m in _imports(tree) if any(m == io or m.startswith(io + ".") for io in IO_MODULES)]
    assert not bad, f"kds/{name} imports {bad}"


@pytest.mark.parametrize(
    "path",
    sorted(
        p for p in KDS.rglob("*.py") if "simulators" not in p.parts and p.name != "contracts.py"
    ),
    ids=lambda p: str(p.relative_to(KDS)),
)
def test_outbox_payloads_are_read_only_through_the_contracts(path: Path) -> None:
    # An effect's fields are spelled once, in kds.contracts (PrintEffect / WritebackEffect).
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    reads = [f"line {node.lineno}" for node in ast.walk(tree) if _reads_payload(node)]
    assert not reads, f"{path.relative_to(KDS)} reads an outbox payload by hand: {reads}"


def _reads_payload(node: ast.AST) -> bool:
    """`<x>.payload.get(...)` or `<x>.payload[...]`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        inner = node.func.value if node.func.attr == "get" else None
    elif isinstance(node, ast.Subscript):
        inner = node.value
    else:
        inner = None
    return isinstance(inner, ast.Attribute) and inner.attr == "payload"
