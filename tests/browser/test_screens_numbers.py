"""Two tills sending the same number: every screen shows kds's own numbers, the POS's as a small reference."""

from __future__ import annotations

import pytest

from .conftest import VIEWPORTS, Api, Pages, expect, item, order


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_same_pos_number_from_two_tills_shows_as_two_pickup_numbers(api: Api, pages: Pages) -> None:
    # Till A and till B both send "#5": the grill, expo, cashier and pickup screens show two
    # different big numbers, and each card names the POS's #5 smaller beside its own number.
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    pickup = pages.open("/pickup")
    a = api.post_order(order("a5", item(1, "Cheeseburger"), source="till-a", number=5))
    b = api.post_order(order("b5", item(1, "Fries"), source="till-b", number=5))
    plain = api.post_order(order("c", item(1, "Steak")))
    assert len({a["number"], b["number"], plain["number"]}) == 3

    for page, card in ((grill, ".card"), (expo, ".card"), (board, ".row")):
        for o in (a, b):
            el = page.locator(f"{card}[data-id='{o['id']}']")
            expect(el.locator(".num")).to_have_text(f"#{o['number']}")
            expect(el.locator(".pos-num")).to_have_text("POS #5")
            # The reference is smaller than the pickup number.
            big = el.locator(".num").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            small = el.locator(".pos-num").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            assert small < big * 0.75
        expect(page.locator(f"{card}[data-id='{plain['id']}'] .pos-num")).to_have_count(0)
    expect(pickup.locator(".preparing-list .number")).to_have_text(
        [str(n) for n in sorted((a["number"], b["number"], plain["number"]))]
    )
