"""A daemon that runs for weeks: what ingested orders leave tracked goes once they are archived."""

from __future__ import annotations

import gc
from datetime import timedelta
from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import OrderIn, utcnow
from kds.states import OrderStatus

from .util import base_config, order_body


async def test_orders_ingested_and_archived_round_after_round_leave_nothing_tracked_behind(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # A daemon runs for weeks: what an order leaves for the cyclic GC (its objects, the store's
    # statement texts and row caches) must go when it is archived, whatever the rounds.
    config = base_config(tmp_path, database={"path": str(tmp_path / "kds.sqlite3")})
    daemon = Daemon(settings_from_dict(config))
    await aiohttp_client(daemon.app)
    service = daemon.service
    tracked = []
    for round_ in range(8):
        for i in range(100):
            result = await service.ingest(OrderIn.model_validate(order_body(f"r{round_}-{i}")))
            await service.set_status(result.order.id, OrderStatus.PROCESSED, walk=True)
        assert await service.archive_finished(now=utcnow() + timedelta(days=2)) == 100
        gc.collect()
        tracked.append(len(gc.get_objects()))
    # The first rounds build what is built on first use and fill bounded histories and caches
    # (the bus's, the last changed orders' JSON); after them the count stays level.
    assert max(tracked[4:]) - tracked[3] < 50, tracked
