"""Bump-bar / keyboard operation of a station and its recall list."""

from __future__ import annotations

from .conftest import Api, Pages, expect, item, order, wait_for


def test_keyboard_only_select_accept_bump_recall(api: Api, pages: Pages) -> None:
    # 1-9 select a card, A accepts, Enter bumps, R opens the recall list and 1 recalls.
    orders = [api.post_order(order(f"k{n}", item(1, f"Dish {n}"))) for n in range(3)]
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card")).to_have_count(3)
    expect(grill.locator("article.card .slot")).to_have_text(["1", "2", "3"])
    second = orders[1]
    wait_for(lambda: api.status_at(second["id"], "grill") == "delivered", what="acknowledged")

    grill.keyboard.press("2")
    expect(grill.locator("article.card.selected")).to_have_attribute("data-id", second["id"])
    grill.keyboard.press("a")
    wait_for(lambda: api.status_at(second["id"], "grill") == "accepted", what="accepted by key")
    assert api.status_at(orders[0]["id"], "grill") == "delivered"

    grill.keyboard.press("Enter")
    wait_for(lambda: api.status_at(second["id"], "grill") == "processed", what="bumped by key")
    expect(grill.locator(f"article.card[data-id='{second['id']}']")).to_have_count(0)
    expect(grill.locator("article.card")).to_have_count(2)

    grill.keyboard.press("r")
    expect(grill.locator(".recall-item")).to_have_count(1)
    grill.keyboard.press("1")
    wait_for(lambda: api.status_at(second["id"], "grill") == "accepted", what="recalled by key")
    expect(grill.locator(".overlay")).to_be_hidden()
    expect(grill.locator(f"article.card[data-id='{second['id']}']")).to_be_visible()

    # Space bumps the selected card too.
    grill.keyboard.press("Escape")
    grill.keyboard.press("1")
    grill.keyboard.press(" ")
    wait_for(
        lambda: api.status_at(orders[0]["id"], "grill") == "processed", what="first bumped by space"
    )


def test_recall_list_holds_the_last_ten_bumped(api: Api, pages: Pages) -> None:
    # The recall list offers the ten most recently bumped orders, newest first.
    made = [api.post_order(order(f"r{n}", item(1, f"Dish {n}"))) for n in range(12)]
    for o in made:
        api.set_endpoint_status(o["id"], "grill", "delivered")
        api.set_endpoint_status(o["id"], "grill", "processed")
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card")).to_have_count(0)
    grill.keyboard.press("r")
    expect(grill.locator(".recall-item")).to_have_count(10)
    expect(grill.locator(".recall-item").first).to_have_attribute("data-id", made[-1]["id"])
    grill.keyboard.press("Escape")
    expect(grill.locator(".overlay")).to_be_hidden()


def test_recall_brings_back_bumped_lines_and_leaves_refused_ones(api: Api, pages: Pages) -> None:
    # An order with one refused line can still be recalled; the refused line stays refused.
    a = api.post_order(order("rr", item(1, "Steak"), item(2, "Fries")))
    base = f"/api/v1/orders/{a['id']}/endpoints/grill"
    api.set_endpoint_status(a["id"], "grill", "delivered")
    api.request("POST", f"{base}/items/2/status", {"status": "refused", "reason": "out of fries"})
    api.set_endpoint_status(a["id"], "grill", "processed")
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card")).to_have_count(0)
    grill.keyboard.press("r")
    expect(grill.locator(".recall-item")).to_have_count(1)
    grill.keyboard.press("Enter")
    wait_for(
        lambda: api.item_status(a["id"], 1, "grill") == "accepted", what="bumped line recalled"
    )
    assert api.item_status(a["id"], 2, "grill") == "refused"
    card = grill.locator(f"article.card[data-id='{a['id']}']")
    expect(card).to_be_visible()
    expect(card.locator(".item[data-item-id='2']")).to_have_attribute("data-status", "refused")
