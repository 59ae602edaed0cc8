"""A restart collects no garbage while it starts: the loaded view is all live, walking it is waste."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kds.app import Daemon
from kds.appkeys import COMPONENTS
from kds.config import settings_from_dict
from kds.model import OrderIn

from .util import base_config, order_body


@pytest.fixture
def default_gc_thresholds() -> Iterator[None]:
    """CPython's default thresholds for the test (a daemon started before raised them)."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("default_gc_thresholds")
async def test_no_collection_runs_while_the_components_start(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # With 10,000 open orders the first collection after the view was read walked ~450,000
    # objects (0.8 s of a restart). From the first component's start until the view is frozen
    # (kds.app._tune_gc) the cyclic GC must not run at all.
    settings = settings_from_dict(base_config(tmp_path))
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    for i in range(300):
        await first.service.ingest(OrderIn.model_validate(order_body(f"gc-{i}")))
    await client.close()
    gc.set_threshold(700, 10, 10)  # the first daemon's start raised them

    second = Daemon(settings)
    starting: list[int] = []

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and COMPONENTS not in second.app:
            starting.append(info["generation"])

    gc.collect()  # counts from zero: the test server's own setup stays below a collection
    gc.callbacks.append(watch)
    try:
        client = await aiohttp_client(second.app)
    finally:
        gc.callbacks.remove(watch)
    assert len(second.service.view) == 300
    assert starting == []
    assert gc.isenabled()
    await client.close()
