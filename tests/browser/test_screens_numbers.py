"""Two tills sending the same number: every screen shows kds's own numbers, the POS's as a small reference."""

from __future__ import annotations

import pytest

from .conftest import SCREENSHOTS, VIEWPORTS, Api, Pages, expect, item, order


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_same_pos_number_from_two_tills_shows_as_two_pickup_numbers(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # Till A and till B both send "#5": the grill, expo, cashier and pickup screens show two
    # different big numbers, and each card names the till's #5 in its small line.
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    pickup = pages.open("/pickup")
    a = api.post_order(
        order("a5", item(1, "Cheeseburger"), source="till-a", number=5, deviceName="Till A")
    )
    b = api.post_order(
        order("b5", item(1, "Fries"), source="till-b", number=5, deviceName="Till B")
    )
    plain = api.post_order(order("c", item(1, "Steak")))
    assert len({a["number"], b["number"], plain["number"]}) == 3

    for page, card in ((grill, ".card"), (expo, ".card"), (board, ".row")):
        for o, till in ((a, "Till A"), (b, "Till B")):
            el = page.locator(f"{card}[data-id='{o['id']}']")
            expect(el.locator(".num")).to_have_text(f"#{o['number']}")
            expect(el.locator(".who")).to_contain_text(
                f"{till} #5"
            )  # the POS's number, from that till
            # The reference is smaller than the pickup number.
            big = el.locator(".num").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            small = el.locator(".who").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            assert small < big * 0.6
        expect(page.locator(f"{card}[data-id='{plain['id']}'] .who")).not_to_contain_text("#")
    expect(pickup.locator(".preparing-list .number")).to_have_text(
        [str(n) for n in sorted((a["number"], b["number"], plain["number"]))]
    )
    if viewport == (1920, 1080):
        grill.screenshot(path=str(SCREENSHOTS / "pos-numbers.png"))
