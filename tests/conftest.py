"""Layered fixtures: config → settings → daemon → a client of it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings, settings_from_dict
from kds.logs import setup_logging
from kds.simulators.printer import VirtualPrinter

from .pg import PgCluster, PostgresUnavailable
from .util import base_config

setup_logging("warning", "json")


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    """The test restaurant's config as a dict; tests may change it before use."""
    return base_config(tmp_path)


@pytest.fixture
def settings(config_data: dict[str, Any]) -> Settings:
    return settings_from_dict(config_data)


@pytest.fixture
def daemon(settings: Settings) -> Daemon:
    return Daemon(settings)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test advances it (see kds.clock)."""
    return ManualClock()


@pytest.fixture
async def printer() -> AsyncIterator[VirtualPrinter]:
    """A virtual kitchen printer named grill on 127.0.0.1."""
    vp = VirtualPrinter(name="grill")
    await vp.start()
    yield vp
    await vp.stop()


@pytest.fixture
async def printers() -> AsyncIterator[dict[str, VirtualPrinter]]:
    """Virtual printers named grill, bar and spare on 127.0.0.1."""
    vps = {name: VirtualPrinter(name=name) for name in ("grill", "bar", "spare")}
    for vp in vps.values():
        await vp.start()
    yield vps
    for vp in vps.values():
        await vp.stop()


@pytest.fixture
async def client(aiohttp_client: Any, daemon: Daemon) -> AsyncIterator[TestClient]:
    """A client of the daemon's app served by a real server on 127.0.0.1."""
    yield await aiohttp_client(daemon.app)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL server for the session (skipped only where none is installed)."""
    try:
        cluster = PgCluster(track_statements=True)
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL tests skipped: {err}")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """The URL of a fresh, empty database of the session's PostgreSQL server."""
    return pg_cluster.create_database()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="long versions of the crash, fault and fuzz suites",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True with --long: suites run more rounds / examples."""
    return bool(request.config.getoption("--long"))
