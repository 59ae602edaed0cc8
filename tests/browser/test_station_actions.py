"""Station, expo, cashier board and pickup views against a live daemon: routing and actions."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Api, Pages, expect, item, order, wait_for


def card(page: Any, order_json: dict[str, Any]) -> Any:
    return page.locator(f"article.card[data-id='{order_json['id']}']")


def test_order_appears_on_its_stations_only_with_their_items(api: Api, pages: Pages) -> None:
    # An order shows on every station it is routed to, with only that station's items,
    # and each screen acknowledges what it shows (sent → delivered).
    grill = pages.open("/screen/grill")
    bar = pages.open("/screen/bar")
    cold = pages.open("/screen/cold")
    a = api.post_order(
        order(
            "a",
            item(1, "Cheeseburger", qty=2, modifiers=["no onion"], comment="medium rare"),
            item(2, "Pilsner", group="Drinks"),
        )
    )
    expect(card(grill, a)).to_be_visible()
    expect(card(grill, a).locator(".item .name")).to_have_text(["Cheeseburger"])
    expect(card(grill, a).locator(".mod")).to_have_text(["no onion"])
    expect(card(grill, a).locator(".comment")).to_have_text("medium rare")
    expect(card(grill, a).locator(".num")).to_have_text(f"#{a['number']}")
    expect(card(bar, a).locator(".item .name")).to_have_text(["Pilsner"])
    expect(cold.locator("body[data-open='0']")).to_be_attached()
    expect(cold.locator("article.card")).to_have_count(0)
    wait_for(
        lambda: (
            api.status_at(a["id"], "grill") == "delivered"
            and api.status_at(a["id"], "bar") == "delivered"
        ),
        what="both stations acknowledged",
    )


def test_actions_change_the_api_and_every_other_view_live(api: Api, pages: Pages) -> None:
    # accept, item bump, bump, recall and refuse from a station reach the API and the
    # board, expo and pickup views without a reload.
    grill = pages.open("/screen/grill")
    board = pages.open("/board")
    expo = pages.open("/expo")
    pickup = pages.open("/pickup")
    a = api.post_order(order("a", item(1, "Cheeseburger"), item(2, "Fries")))
    b = api.post_order(order("b", item(1, "Steak")))
    expect(card(grill, a)).to_be_visible()
    expect(pickup.locator(f".preparing-list [data-id='{a['id']}']")).to_have_text(str(a["number"]))
    grill.bring_to_front()  # the cook's screen is the one in front (background pages get no frames)

    # Tap the card: accepted.
    card(grill, a).locator(".card-head").click()
    wait_for(lambda: api.status_at(a["id"], "grill") == "accepted", what="accepted in the API")
    expect(
        board.locator(f".row[data-id='{a['id']}'] .chip[data-endpoint='grill']")
    ).to_have_attribute("data-status", "accepted")
    expect(
        expo.locator(f"article.card[data-id='{a['id']}'] .chip[data-status='accepted']")
    ).to_have_count(2)

    # Tap one item: that item is bumped, the other stays.
    card(grill, a).locator(".item[data-item-id='2']").click()
    wait_for(
        lambda: api.item_status(a["id"], 2, "grill") == "processed", what="item bumped in the API"
    )
    assert api.item_status(a["id"], 1, "grill") == "accepted"
    expect(card(grill, a).locator(".item[data-item-id='2']")).to_have_attribute(
        "data-status", "processed"
    )
    expect(
        expo.locator(f"article.card[data-id='{a['id']}'] .item[data-item-id='2'] .chip")
    ).to_have_attribute("data-status", "processed")
    expect(expo.locator(f"article.card[data-id='{a['id']}'] .progress")).to_contain_text("1/2")

    # Bump: the order is done at the grill, leaves the station, turns ready for pickup.
    card(grill, a).locator("button.bump").click()
    wait_for(lambda: api.status_at(a["id"], "grill") == "processed", what="bumped in the API")
    expect(card(grill, a)).to_have_count(0)
    expect(pickup.locator(f".ready-list [data-id='{a['id']}']")).to_have_text(str(a["number"]))
    expect(pickup.locator(f".preparing-list [data-id='{a['id']}']")).to_have_count(0)
    expect(board.locator(f".row[data-id='{a['id']}']")).to_have_class("row s-processed ready")
    expect(expo.locator(f"article.card[data-id='{a['id']}']")).to_have_count(0)

    # Recall it from the recall list: back on the station, preparing again.
    grill.locator("button.recall-open").click()
    grill.locator(f".recall-item[data-id='{a['id']}']").click()
    wait_for(lambda: api.status_at(a["id"], "grill") == "accepted", what="recalled in the API")
    expect(card(grill, a)).to_be_visible()
    expect(pickup.locator(f".preparing-list [data-id='{a['id']}']")).to_be_visible()
    expect(pickup.locator(f".ready-list [data-id='{a['id']}']")).to_have_count(0)
    expect(
        board.locator(f".row[data-id='{a['id']}'] .chip[data-endpoint='grill']")
    ).to_have_attribute("data-status", "accepted")

    # Refuse with a reason.
    card(grill, b).locator("button.refuse").click()
    grill.locator(".refuse-panel button.reason").first.click()
    wait_for(lambda: api.status_at(b["id"], "grill") == "refused", what="refused in the API")
    changes = api.order(b["id"])["items"][0]["endpoints"][0]["statusChanges"]
    assert changes[-1]["status"] == "refused" and changes[-1]["reason"] == "Out of stock"
    expect(card(grill, b)).to_have_count(0)
    # The cashier sees how it ended, so the guest can be told.
    expect(board.locator(f".row[data-id='{b['id']}']")).to_have_attribute("data-status", "refused")
    expect(board.locator(f".row[data-id='{b['id']}'] .overall")).to_have_text("Refused")


def test_expo_bumps_the_whole_order(api: Api, pages: Pages) -> None:
    # The pass finishes an order at every station at once.
    expo = pages.open("/expo")
    bar = pages.open("/screen/bar")
    a = api.post_order(order("a", item(1, "Cheeseburger"), item(2, "Pilsner", group="Drinks")))
    expect(bar.locator(f"article.card[data-id='{a['id']}']")).to_be_visible()
    expo.bring_to_front()
    expo.locator(f"article.card[data-id='{a['id']}'] button.bump").click()
    wait_for(
        lambda: (
            api.order(a["id"])["endpointStatuses"] == {"grill": "processed", "bar": "processed"}
        ),
        what="processed everywhere",
    )
    expect(expo.locator(f"article.card[data-id='{a['id']}']")).to_have_count(0)
    expect(bar.locator(f"article.card[data-id='{a['id']}']")).to_have_count(0)


def test_cancelled_item_is_struck_through(api: Api, pages: Pages) -> None:
    # A POS cancellation of one line shows as VOID on the station, not as a vanished line.
    grill = pages.open("/screen/grill")
    a = api.post_order(order("a", item(1, "Cheeseburger"), item(2, "Fries")))
    expect(card(grill, a)).to_be_visible()
    api.request("POST", f"/api/v1/orders/{a['id']}/items/2/status", {"status": "processSkipped"})
    expect(card(grill, a).locator(".item[data-item-id='2']")).to_have_attribute(
        "data-status", "processSkipped"
    )
    expect(card(grill, a).locator(".item[data-item-id='2'] .void")).to_have_text("VOID")


def test_cancelled_order_stays_struck_through_until_cleared(api: Api, pages: Pages) -> None:
    # A ticket the POS cancels after the station had it stays visible as VOID (so nobody keeps
    # cooking it unaware) until a cook clears it with bump; a bump there changes nothing in the API.
    grill = pages.open("/screen/grill")
    a = api.post_order(order("v", item(1, "Cheeseburger")))
    b = api.post_order(order("w", item(1, "Steak")))
    expect(card(grill, a)).to_be_visible()
    api.request("DELETE", f"/api/v1/orders/{a['id']}")
    expect(card(grill, a).locator(".void-banner")).to_have_text("VOID")
    expect(card(grill, a)).to_have_class(re.compile(r"\bvoided\b"))
    expect(card(grill, a).locator("button.refuse")).to_have_count(0)
    expect(grill.locator(".allday-list li")).to_have_count(1)  # the void no longer counts
    grill.bring_to_front()
    card(grill, a).locator("button.bump").click()
    expect(card(grill, a)).to_have_count(0)
    assert api.status_at(a["id"], "grill") == "processSkipped"
    expect(card(grill, b)).to_be_visible()
