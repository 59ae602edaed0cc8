"""A cook's taps during a dropped link are queued, shown as pending and replayed once on reconnect."""

from __future__ import annotations

import re
from typing import Any

from tests.util import KdsProcess

from .conftest import Api, Pages, expect, item, order, wait_for


def changes_to(api: Api, order_id: str, endpoint: str, status: str) -> int:
    """How many times the audit log moved an item of the order at `endpoint` to `status`."""
    return sum(
        1
        for i in api.order(order_id)["items"]
        for e in i["endpoints"]
        if e["name"] == endpoint
        for c in e["statusChanges"]
        if c["status"] == status
    )


def card(page: Any, o: dict[str, Any]) -> Any:
    return page.locator(f"article.card[data-id='{o['id']}']")


def test_bump_while_the_daemon_is_down_lands_once_after_restart(
    kds: KdsProcess, api: Api, pages: Pages
) -> None:
    # The daemon stops under an open screen; the cook bumps anyway: the card says the bump
    # waits, and once kds is back the bump is sent, exactly once, with no error shown.
    a = api.post_order(order("off", item(1, "Steak"), item(2, "Fries")))
    b = api.post_order(order("on", item(1, "Burger")))
    grill = pages.open("/screen/grill")
    for o in (a, b):
        wait_for(lambda o=o: api.status_at(o["id"], "grill") == "delivered", what="acknowledged")

    kds.stop()
    expect(grill.locator("#banner")).to_be_visible(timeout=3000)
    card(grill, a).locator(".item[data-item-id='2']").click()  # an item bump, then the whole ticket
    card(grill, a).locator("button.bump").click()
    expect(card(grill, a)).to_have_class(re.compile(r"\bpending\b"))
    expect(card(grill, a).locator(".pending-tag")).to_have_text("waiting for connection")
    expect(grill.locator("#toast")).to_be_hidden()  # no "Failed to fetch"

    kds.start()
    expect(grill.locator("#banner")).to_be_hidden(timeout=10_000)
    wait_for(
        lambda: api.status_at(a["id"], "grill") == "processed",
        timeout=10,
        what="queued bump replayed",
    )
    expect(card(grill, a)).to_have_count(0)
    assert changes_to(api, a["id"], "grill", "processed") == 2  # item 2 once, then item 1 once
    assert api.item_status(a["id"], 2, "grill") == "processed"
    assert api.status_at(b["id"], "grill") == "delivered"
    expect(grill.locator("#toast")).to_be_hidden()


def test_a_queued_action_the_kitchen_no_longer_allows_is_reported(api: Api, pages: Pages) -> None:
    # Offline, the cook accepts a ticket that the expo bumps meanwhile: on reconnect the
    # accept is refused (409) and the screen says so, naming the ticket.
    a = api.post_order(order("late-accept", item(1, "Steak")))
    grill = pages.open("/screen/grill")
    wait_for(lambda: api.status_at(a["id"], "grill") == "delivered", what="acknowledged")

    pages.context.set_offline(True)
    expect(grill.locator("#banner")).to_be_visible(timeout=3000)
    card(grill, a).locator(".card-head").click()  # accept
    expect(card(grill, a).locator(".pending-tag")).to_be_visible()
    api.set_endpoint_status(a["id"], "grill", "processed")
    pages.context.set_offline(False)

    toast = grill.locator("#toast")
    expect(toast).to_be_visible(timeout=10_000)
    expect(toast).to_contain_text(f"Not done: #{a['number']}")
    expect(toast).to_contain_text("accept")
    assert changes_to(api, a["id"], "grill", "accepted") == 0
