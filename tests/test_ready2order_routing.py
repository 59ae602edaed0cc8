"""ready2order items are routed by product group as the POS knows it (issue 14, item 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.ready2order import Ready2OrderSimulator

from .test_ready2order_e2e import (  # noqa: F401 - fixtures: daemon, manual_clock
    SECRET,
    TOKEN,
    active_items,
    daemon,
    manual_clock,
    product,
    source,
    table,
)
from .util import base_config, until, wait_until

RATE = {"rate_limit": 40, "rate_period": 2.0}


@pytest.fixture
def r2o_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sim() -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(account_token=TOKEN, retry_delays=(0.05, 0.1), **RATE)
    sim.seed_menu()
    food = sim.add_group("Food")
    burgers = sim.add_group("Burgers", parent=food)
    sim.add_product("Veggie burger", burgers)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(
    tmp_path: Path, sim: Ready2OrderSimulator, r2o_options: dict[str, Any]
) -> dict[str, Any]:
    source = {
        "type": "ready2order", "base_url": sim.api_url, "account_token": TOKEN, "webhook_secret": SECRET,
        "poll_interval": "1h", "rate_limit": RATE["rate_limit"], "rate_period": "2s", **r2o_options,
    }  # fmt: skip
    routing = {
        "default_endpoint": "grill",
        "rules": [
            {"product_group": "Drinks", "endpoint": "bar"},
            {"product_group": "Food", "endpoint": "cold"},
        ],
    }
    return base_config(tmp_path, routing=routing, sources=[source])


@pytest.fixture
async def hooked(client: TestClient, sim: Ready2OrderSimulator) -> TestClient:
    sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    return client


async def endpoints_of(daemon: Daemon, oid: int) -> list[str]:
    order = await until(daemon.clock, lambda: active_items(daemon).get(oid))
    item = order.item(oid)
    assert item is not None
    return [e.name for e in item.endpoints]


async def test_rule_on_a_parent_group_matches_its_children(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a rule on a group (productgroup_parent) routes the products of its child groups.
    (oid,) = sim.create_items(table(sim, "1"), [(product(sim, "Veggie burger"), 1)])
    assert await endpoints_of(daemon, oid) == ["cold"]


async def test_product_not_in_the_catalogue_is_fetched_before_routing(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: a product (and group) added after the catalogue was read, with no product
    # webhook, is looked up before its item is routed: it does not land at the default station.
    await wait_until(lambda: source(daemon).poll_count >= 1)
    mojito = sim.add_product("Mojito", "Drinks", notify=False)
    pizza = sim.add_product(
        "Margherita",
        sim.add_group("Pizza", parent=next(g for g, x in sim.groups.items() if x.name == "Food")),
        notify=False,
    )
    ids = sim.create_items(table(sim, "2"), [(mojito, 1), (pizza, 1)])
    assert await endpoints_of(daemon, ids[0]) == ["bar"]
    assert await endpoints_of(daemon, ids[1]) == ["cold"]
    item = active_items(daemon)[ids[0]].item(ids[0])
    assert item is not None and item.plu.group == "Drinks"


# The simulator's rate limit counts real seconds, and this test holds kds under it: it keeps
# the system clock (with short windows).
@pytest.mark.parametrize(
    ("manual_clock", "r2o_options"),
    [(False, {"page_size": 1, "group_window": "50ms", "refetch_delay": "50ms"})],
)
async def test_catalogue_refresh_never_delays_an_order_fetch(
    hooked: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # Guarantees: while the catalogue is read (here one product per page: dozens of requests
    # under the rate limit), a webhook's order fetch goes ahead of the remaining catalogue pages.
    def catalogue_requests(since: int = 0) -> int:
        return sum(
            1
            for r in sim.requests[since:]
            if r[2].startswith(("/v1/products", "/v1/productgroups", "/v1/tables"))
        )

    await wait_until(lambda: catalogue_requests() >= 3)
    mark = len(sim.requests)
    (oid,) = sim.create_items(table(sim, "3"), [(product(sim, "Burger"), 1)])
    await wait_until(lambda: oid in active_items(daemon), timeout=10)
    first_fetch = next(i for i, r in enumerate(sim.requests[mark:], mark) if r[2] == "/v1/orders")
    assert catalogue_requests(mark) - catalogue_requests(first_fetch) <= 3
    await wait_until(lambda: source(daemon).catalog.loaded, timeout=10)
    assert catalogue_requests(first_fetch) > 5  # the catalogue was still being read after it
    assert sim.throttled == 0
