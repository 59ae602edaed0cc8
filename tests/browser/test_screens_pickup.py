"""The pickup board: numbers move from preparing to ready, and leave after the configured time."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, Pages, expect, item, order


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    kds_config["ui"]["pickup_ready_time"] = "30s"
    return kds_config


def test_ready_number_leaves_after_the_pickup_time(api: Api, pages: Pages) -> None:
    # A finished order shows as ready for [ui] pickup_ready_time, then leaves the board;
    # a fully cancelled order never shows as preparing.
    pickup = pages.open("/pickup", clock=True)
    board = pages.open("/board")
    a = api.post_order(order("p1", item(1, "Cheeseburger"), item(2, "Pilsner", group="Drinks")))
    cancelled = api.post_order(order("p2", item(1, "Steak")))
    api.request("DELETE", f"/api/v1/orders/{cancelled['id']}")
    number = pickup.locator(f".number[data-id='{a['id']}']")
    expect(pickup.locator(".preparing-list .number")).to_have_text([str(a["number"])])

    api.set_endpoint_status(a["id"], "grill", "delivered")
    api.set_endpoint_status(a["id"], "grill", "processed")
    expect(pickup.locator(".preparing-list .number")).to_have_text(
        [str(a["number"])]
    )  # the bar is not done yet
    api.set_endpoint_status(a["id"], "bar", "delivered")
    api.set_endpoint_status(a["id"], "bar", "processed")
    expect(pickup.locator(".ready-list .number")).to_have_text([str(a["number"])])
    expect(pickup.locator(".preparing-list .number")).to_have_count(0)
    expect(board.locator(f".row.ready[data-id='{a['id']}']")).to_be_visible()

    pickup.clock.fast_forward(31_000)
    expect(number).to_have_count(0)
    expect(board.locator(f".row[data-id='{a['id']}']")).to_have_count(0)
