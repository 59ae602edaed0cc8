"""The pickup board with a full house: only pickup orders, numbers sorted, nothing outside the screen."""

from __future__ import annotations

import random
from typing import Any

import pytest

from .conftest import SCREENSHOTS, VIEWPORTS, Api, Pages, expect, item, order, wait_for


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    kds_config["ui"]["pickup_types"] = ["takeAway", "delivery"]
    return kds_config


def _fill(api: Api) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """60 takeaway and delivery orders (20 of them ready, finished in random order) and 10 table orders."""
    rng = random.Random(17)
    pickup = [
        api.post_order(
            order(
                f"p{i}",
                item(1, "Cheeseburger"),
                ticket={
                    "name": f"Takeaway {i}",
                    "purchaseType": rng.choice(["takeAway", "delivery"]),
                },
            )
        )
        for i in range(60)
    ]
    tables = [
        api.post_order(order(f"t{i}", item(1, "Steak"))) for i in range(10)
    ]  # walkIn at table 5
    ready = rng.sample(pickup, 20)
    for o in ready:
        api.set_endpoint_status(o["id"], "grill", "delivered")
        api.set_endpoint_status(o["id"], "grill", "processed")
    return pickup, ready, tables


def _numbers(page: Any, selector: str) -> list[int]:
    return [int(text) for text in page.locator(selector).all_inner_texts()]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_sixty_pickup_orders_fit_sorted_without_table_orders(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # 40 preparing and 20 ready (finished in random order) and 10 dine-in table orders: the
    # board lists only takeaway and delivery numbers, each column in ascending order, and
    # every number is inside the window — the page never scrolls.
    pickup_orders, ready, tables = _fill(api)
    page = pages.open("/pickup")
    ready_ids = {o["id"] for o in ready}
    preparing = sorted(o["number"] for o in pickup_orders if o["id"] not in ready_ids)
    wait_for(
        lambda: _numbers(page, ".ready-list .number") == sorted(o["number"] for o in ready),
        what="ready column sorted",
    )
    assert _numbers(page, ".preparing-list .number") == preparing
    for o in tables:
        expect(page.locator(f".number[data-id='{o['id']}']")).to_have_count(0)

    width, height = viewport
    outside = page.evaluate(
        """([w, h]) => [...document.querySelectorAll('.number, .pickup h2')].filter((e) => {
             const r = e.getBoundingClientRect();
             return r.width === 0 || r.left < 0 || r.top < 0 || r.right > w || r.bottom > h;
           }).map((e) => e.textContent)""",
        [width, height],
    )
    assert outside == []
    assert page.evaluate(
        "document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth"
    )
    # Still readable from across the room.
    size = page.locator(".preparing-list .number").first.evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert size >= 28
    if viewport == (1920, 1080):
        page.screenshot(path=str(SCREENSHOTS / "pickup-full.png"))


def test_more_numbers_than_fit_page_through(api: Api, pages: Pages) -> None:
    # 200 preparing numbers cannot fit a 1280×800 board at a readable size: the column shows a
    # page at a time ("1/2"), each page sorted, and turns to the next page on its own.
    for i in range(200):
        api.post_order(
            order(
                f"p{i}",
                item(1, "Fries"),
                ticket={"name": f"Takeaway {i}", "purchaseType": "takeAway"},
            )
        )
    page = pages.open("/pickup", clock=True)
    pager = page.locator(".col-preparing .page-of")
    expect(pager).to_have_text("1/2")
    first = _numbers(page, ".preparing-list .number")
    assert first == sorted(first) and 0 < len(first) < 200
    page.clock.fast_forward(10_000)
    expect(pager).to_have_text("2/2")
    second = _numbers(page, ".preparing-list .number")
    assert second == sorted(second) and first[-1] < second[0]
    assert len(first) + len(second) == 200
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")
