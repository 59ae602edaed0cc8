"""A screen's action is one request: the server walks the statuses between (states.path)."""

from __future__ import annotations

from typing import Any

from .conftest import Api, Pages, expect, item, order


def record_status_posts(page: Any, *, drop: str | None = None) -> list[str]:
    """The statuses `page` posts, in order; those equal to `drop` never reach kds.

    Route handlers run while the test is inside a Playwright call: wait with `expect`
    on the page (not by polling the API) while a posted request is in flight.
    """
    posted: list[str] = []

    def on_status(route: Any) -> None:
        status = (route.request.post_data_json or {}).get("status")
        posted.append(status)
        if status == drop:
            route.abort()
        else:
            route.continue_()

    page.route("**/status", on_status)
    return posted


def walk(api: Api, order_id: str, item_id: int, endpoint: str) -> list[str]:
    """The statuses item `item_id` went through at `endpoint`, from the audit (statusChanges)."""
    found = next(i for i in api.order(order_id)["items"] if i["id"] == item_id)
    at = next(e for e in found["endpoints"] if e["name"] == endpoint)
    return [change["status"] for change in at["statusChanges"]]


def test_accept_of_a_ticket_never_acknowledged_is_one_request(api: Api, pages: Pages) -> None:
    # The grill's acknowledgement (sent → delivered) never gets through; a tap on the card
    # still accepts it with one POST, and the audit shows the walk through delivered.
    grill = pages.open("/screen/grill")
    posted = record_status_posts(grill, drop="delivered")
    with grill.expect_event("requestfailed"):  # the acknowledgement, dropped
        a = api.post_order(order("walk", item(1, "Steak"), item(2, "Fries")))
    card = grill.locator(f"article.card[data-id='{a['id']}']")
    expect(card).to_be_visible()
    assert api.status_at(a["id"], "grill") == "sent"
    before = len(posted)
    grill.bring_to_front()
    card.locator(".card-head").click()
    expect(card).to_have_attribute("data-status", "accepted")
    assert api.status_at(a["id"], "grill") == "accepted"
    assert posted[before:] == ["accepted"]
    for item_id in (1, 2):
        assert walk(api, a["id"], item_id, "grill")[-3:] == ["sent", "delivered", "accepted"]


def test_expo_bump_of_tickets_no_screen_acknowledged_is_one_request(api: Api, pages: Pages) -> None:
    # No station screen is open: the grill and bar items are still `sent`. The expo's bump
    # is one POST; every item passes delivered on the server.
    expo = pages.open("/expo")
    posted = record_status_posts(expo)
    a = api.post_order(order("expo", item(1, "Steak"), item(2, "Beer", group="Drinks")))
    assert api.status_at(a["id"], "grill") == "sent" and api.status_at(a["id"], "bar") == "sent"
    card = expo.locator(f"article.expo-card[data-id='{a['id']}']")
    expect(card).to_be_visible()
    expo.bring_to_front()
    card.locator("button.bump").click()
    expect(card).to_have_count(0)  # done everywhere: off the expo
    assert api.status_at(a["id"], "grill") == "processed"
    assert api.status_at(a["id"], "bar") == "processed"
    assert posted == ["processed"]
    assert walk(api, a["id"], 1, "grill")[-3:] == ["sent", "delivered", "processed"]
    assert walk(api, a["id"], 2, "bar")[-3:] == ["sent", "delivered", "processed"]
