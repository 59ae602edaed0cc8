"""`kds bench --db postgresql://…` on a real PostgreSQL server (tests/pg.py), at a tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest

from .pg import PgCluster
from .util import run_bench

pytestmark = pytest.mark.slow

PG_FIGURES = {
    "pg.ingest.rate",
    "pg.ingest.p50",
    "pg.ingest.p99",
    "pg.crossnode.p50",
    "pg.crossnode.p99",
}


def test_pg_bench_runs_and_reports_every_figure(tmp_path: Path, pg_cluster: PgCluster) -> None:
    # Guarantees: the PostgreSQL bench runs from the CLI (kds and the bare asyncpg handler, two
    # nodes for the cross-node latency), every figure has a value, ingest has its baseline, no
    # phase failed, and the databases it made are dropped.
    _, report = run_bench(
        tmp_path,
        *("--db", pg_cluster.url("postgres"), "--orders", "40", "--concurrency", "4"),
        *("--rounds", "1", "--screens", "3", "--rate", "20", "--duration", "1"),
    )
    figures = {f["key"]: f for f in report["figures"]}
    assert set(figures) == PG_FIGURES
    for figure in figures.values():
        assert isinstance(figure["value"], (int, float)) and figure["value"] > 0, figure
    assert figures["pg.ingest.rate"]["baseline"] and figures["pg.ingest.rate"]["ratio"]
    left = pg_cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'kds_bench_%'")
    assert left.strip() == "0"
