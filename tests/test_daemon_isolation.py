"""Two daemons in one process (tests, the benchmark) share nothing: no metrics, no rate limits."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.sources.portos.source import PortosSource
from kds.sources.ready2order.source import Ready2OrderSource

from .util import base_config

#: Series every daemon with these sources exports (labelled: shown by HELP before any sample).
SERIES = ("kds_source_up", "kds_portos_requests", "kds_writeback_pending")


def two_sources(tmp_path: Path) -> dict[str, Any]:
    """A PORTOS poller and two ready2order sources on one account; nothing is contacted yet."""
    return base_config(
        tmp_path,
        sources=[
            {"type": "native"},
            {"type": "portos", "base_url": "http://127.0.0.1:9", "token": "t"},
            *(
                {
                    "type": "ready2order",
                    "name": name,
                    "base_url": "http://127.0.0.1:9",
                    "account_token": "same-account",
                    "webhook_secret": secret * 16,
                }
                for name, secret in (("r2o-bar", "s"), ("r2o-terrace", "t"))
            ),
        ],
    )


def exported(daemon: Daemon) -> str:
    return generate_latest(daemon.registry).decode()


def test_each_daemon_has_its_own_metrics_and_leaves_nothing_behind(tmp_path: Path) -> None:
    # Source metrics were cached per registry in class-level dicts (one keyed by id(registry)):
    # every daemon's metrics stayed in the process after the daemon was gone, and a new registry
    # at a reused address would have got a dead registry's metrics. Each daemon now exports its
    # own series, and once it is gone nothing of it is kept.
    for n in range(3):
        daemon = Daemon(settings_from_dict(two_sources(tmp_path / str(n))))
        text = exported(daemon)
        missing = [s for s in SERIES if f"# HELP {s}" not in text]
        assert not missing, f"daemon {n} does not export {missing}"
        portos = next(s for s in daemon.sources if isinstance(s, PortosSource))
        kept = [weakref.ref(portos._metrics), weakref.ref(portos.metrics)]
        del daemon, portos, text
        gc.collect()
        assert [ref() for ref in kept] == [None, None], "a finished daemon's metrics were kept"


async def test_two_daemons_on_one_account_do_not_share_a_rate_limit(tmp_path: Path) -> None:
    # Two sources of one daemon on one ready2order account share its bucket (60 a minute); a
    # second daemon in the same process has its own, so one test's requests never throttle another.
    first = Daemon(settings_from_dict(two_sources(tmp_path / "a")))
    second = Daemon(settings_from_dict(two_sources(tmp_path / "b")))
    bar, terrace = (s for s in first.sources if isinstance(s, Ready2OrderSource))
    assert bar.bucket is terrace.bucket
    a, b = (next(s for s in d.sources if isinstance(s, Ready2OrderSource)) for d in (first, second))
    assert a.bucket is not b.bucket
    full = b.bucket.health()["tokens"]
    await a.bucket.acquire()
    assert b.bucket.health()["tokens"] == full
    assert a.bucket.health()["tokens"] < full
