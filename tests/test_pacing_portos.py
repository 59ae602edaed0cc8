"""A held course is written back to PORTOS when it is fired, not before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.portos import PortosSimulator

from .test_portos_e2e import daemon, kds_orders, portos_auth, sim  # noqa: F401
from .util import base_config, until


@pytest.fixture
def config_data(
    tmp_path: Path,
    sim: PortosSimulator,
    portos_auth: dict[str, Any],
) -> dict[str, Any]:
    # Default intervals on the test's ManualClock (the `daemon` fixture): polls come as it moves.
    source = {"type": "portos", "base_url": sim.url, "request_timeout": "300ms", **portos_auth}
    config = base_config(tmp_path, sources=[{"type": "native"}, source])
    config["endpoints"][0]["hold_courses"] = True
    return config


async def test_fired_course_is_written_back_as_sent_only_when_fired(
    client: TestClient,
    daemon: Daemon,
    sim: PortosSimulator,
) -> None:
    # Guarantees: PORTOS sees course 1 sent at once and the held course 2 still created; the
    # fire writes `sent` back for course 2.
    sim.create_ticket([{"pluCode": 401, "courseNumber": 1}, {"pluCode": 101, "courseNumber": 2}])
    order = await until(
        daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0]
    )  # a poll
    soup, burger = (i.id for i in order.items)
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill", soup) == ["sent"])
    assert [h.item_id for h in order.holds] == [burger]
    assert sim.history(order.external_id, burger, "grill") == ["created"]
    response = await client.post(f"/api/v1/orders/{order.id}/courses/2/fire")
    assert response.status == 200, await response.text()
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill", burger) == ["sent"])
    assert sim.history(order.external_id, burger, "grill") == ["created", "sent"]
