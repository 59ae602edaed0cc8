"""No key acts on a ticket the cook did not select; every bump can be undone; every card can be selected."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .colors import contrast
from .conftest import VIEWPORTS, Api, Pages, expect, item, order, wait_for


def acknowledged(api: Api, *orders: dict[str, Any]) -> None:
    for o in orders:
        wait_for(lambda o=o: api.status_at(o["id"], "grill") == "delivered", what="acknowledged")


def card(page: Any, o: dict[str, Any]) -> Any:
    return page.locator(f"article.card[data-id='{o['id']}']")


def test_enter_with_nothing_selected_bumps_nothing_and_says_so(api: Api, pages: Pages) -> None:
    # Enter, Space, I and A with no selection used to act on the oldest ticket: now they show a hint.
    made = [api.post_order(order(f"n{n}", item(1, f"Dish {n}"))) for n in range(3)]
    grill = pages.open("/screen/grill")
    acknowledged(api, *made)
    for key in ("Enter", " ", "i", "a"):
        grill.keyboard.press(key)
        expect(grill.locator(".select-hint")).to_be_visible()
        expect(grill.locator(".select-hint")).to_contain_text("Select a ticket")
    # A later, explicit action lands after anything those keys might have sent.
    grill.keyboard.press("3")
    grill.keyboard.press("a")
    wait_for(lambda: api.status_at(made[2]["id"], "grill") == "accepted", what="third accepted")
    assert [api.status_at(o["id"], "grill") for o in made[:2]] == ["delivered", "delivered"]


def test_item_bump_that_finishes_the_selected_card_does_not_move_the_selection(
    api: Api, pages: Pages
) -> None:
    # I on a one-line ticket finishes it; the next Enter must not bump the next ticket.
    a = api.post_order(order("one", item(1, "Steak")))
    b = api.post_order(order("two", item(1, "Burger")))
    grill = pages.open("/screen/grill")
    acknowledged(api, a, b)
    grill.keyboard.press("1")
    expect(grill.locator("article.card.selected")).to_have_attribute("data-id", a["id"])
    grill.keyboard.press("i")
    wait_for(lambda: api.status_at(a["id"], "grill") == "processed", what="item bumped")
    expect(card(grill, a)).to_have_count(0)
    expect(grill.locator("article.card.selected")).to_have_count(0)
    grill.keyboard.press("Enter")
    expect(grill.locator(".select-hint")).to_be_visible()
    grill.keyboard.press("1")
    grill.keyboard.press("a")
    wait_for(lambda: api.status_at(b["id"], "grill") == "accepted", what="b accepted, not bumped")


def test_every_bump_can_be_undone_by_key_and_by_tap(api: Api, pages: Pages) -> None:
    # A bump shows an Undo toast for a few seconds; U (or the toast's button) recalls it.
    a = api.post_order(order("ua", item(1, "Steak"), item(2, "Fries")))
    b = api.post_order(order("ub", item(1, "Burger")))
    grill = pages.open("/screen/grill")
    acknowledged(api, a, b)

    grill.keyboard.press("1")
    grill.keyboard.press("Enter")
    wait_for(lambda: api.status_at(a["id"], "grill") == "processed", what="bumped")
    undo = grill.locator(".undo-bar")
    expect(undo).to_be_visible()
    expect(undo).to_contain_text(f"#{a['number']}")
    grill.keyboard.press("u")
    wait_for(lambda: api.status_at(a["id"], "grill") == "accepted", what="undone by key")
    expect(card(grill, a)).to_be_visible()
    expect(undo).to_be_hidden()

    # Tap an item (an item bump), then tap Undo: that item only comes back.
    card(grill, a).locator(".item[data-item-id='2']").click()
    wait_for(lambda: api.item_status(a["id"], 2, "grill") == "processed", what="item bumped")
    expect(undo).to_be_visible()
    undo.locator("button.undo").click()
    wait_for(
        lambda: api.item_status(a["id"], 2, "grill") == "accepted", what="item bump undone by tap"
    )
    assert api.item_status(a["id"], 1, "grill") == "accepted"
    assert api.status_at(b["id"], "grill") == "delivered"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_two_key_selection_reaches_every_card_and_slots_are_readable(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # Every card on the page has a slot number; "1" "2" selects slot 12. Slots are large and high contrast.
    made = [api.post_order(order(f"s{n}", item(1, f"Dish {n}"))) for n in range(14)]
    grill = pages.open("/screen/grill")
    expect(grill.locator("body[data-open='14']")).to_be_attached()
    shown = grill.locator("article.card").count()
    expect(grill.locator("article.card .slot")).to_have_text([str(n) for n in range(1, shown + 1)])
    assert shown >= 9
    target = grill.locator(f"article.card[data-slot='{shown}']")
    for digit in str(shown):
        grill.keyboard.press(digit)
    expect(grill.locator("article.card.selected")).to_have_count(1)
    expect(target).to_have_class(re.compile(r"\bselected\b"))
    slot = grill.locator("article.card .slot").first
    # A card drawn anew (a screen's receipt makes it `delivered`) replaces the element found a
    # moment ago, whose style then reads as NaN: the check is run on the current one until true.
    grill.wait_for_function(
        "() => { const e = document.querySelector('article.card .slot');"
        " return e !== null && parseFloat(getComputedStyle(e).fontSize) >= 24; }",
        timeout=5000,
    )
    assert contrast(slot) >= 7
    assert len(made) == 14
