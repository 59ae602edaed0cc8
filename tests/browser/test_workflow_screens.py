"""Kitchen workflow in Chromium: allergen band and acknowledgement, rush first with a banner,
moving a ticket from the expo, the reports page (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SCREENSHOTS, Api, Pages, expect, item, order, wait_for


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    kds_config["allergens"] = {"nuts": ["peanut", "nuss"], "gluten": ["gluten"]}
    return kds_config


def card(page: Any, order_json: dict[str, Any]) -> Any:
    return page.locator(f"article.card[data-id='{order_json['id']}']")


def test_allergen_band_and_acknowledgement(api: Api, pages: Pages) -> None:
    # The ticket and the item show a red band in words; tapping the card cannot accept it until
    # the cook taps "Allergy noted"; then it can.
    grill = pages.open("/screen/grill")
    a = api.post_order(order("a", item(1, "Peanut satay"), item(2, "Fries")))
    band = card(grill, a).locator(".header-allergens")
    expect(band.locator(".allergen-text")).to_have_text("ALLERGY: NUTS")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    grill.screenshot(path=str(SCREENSHOTS / "allergen.png"))
    expect(card(grill, a).locator(".item-allergens")).to_have_count(1)
    expect(card(grill, a).locator(".item").first.locator(".item-allergens")).to_have_text(
        "ALLERGY: NUTS"
    )
    wait_for(lambda: api.status_at(a["id"], "grill") == "delivered", what="delivered")
    card(grill, a).locator(".card-head .num").click()
    expect(grill.locator("#toast")).to_contain_text("allergens")
    assert api.status_at(a["id"], "grill") == "delivered"
    band.locator("button.ack-allergens").click()
    expect(band).to_have_class("allergen-band header-allergens acked")
    wait_for(lambda: "grill" in api.order(a["id"])["allergenAcks"], what="acknowledged")
    card(grill, a).locator(".card-head .num").click()
    wait_for(lambda: api.status_at(a["id"], "grill") == "accepted", what="accepted after the ack")


def test_rush_from_the_expo_moves_the_order_first_with_a_banner(api: Api, pages: Pages) -> None:
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    a = api.post_order(order("a", item(1, "Steak")))
    b = api.post_order(order("b", item(1, "Burger")))
    expect(grill.locator("article.card")).to_have_count(2)
    expect(grill.locator("article.card").first).to_have_attribute("data-id", a["id"])
    expo.bring_to_front()
    card(expo, b).locator("button.rush").click()
    wait_for(lambda: api.order(b["id"])["rush"], what="rushed in the API")
    expect(grill.locator("article.card").first).to_have_attribute("data-id", b["id"])
    expect(card(grill, b).locator(".rush-banner")).to_have_text("RUSH")
    expect(card(expo, b).locator(".rush-banner")).to_have_text("RUSH")
    expect(card(expo, b).locator("button.rush")).to_have_count(0)
    # The cashier board shows it too, and can rush the other order.
    row = board.locator(f".row[data-id='{b['id']}']")
    expect(row.locator(".rush-banner")).to_have_text("RUSH")
    board.bring_to_front()
    board.locator(f".row[data-id='{a['id']}'] button.rush").click()
    wait_for(lambda: api.order(a["id"])["rush"], what="rushed from the board")


def test_move_button_on_the_expo(api: Api, pages: Pages) -> None:
    expo = pages.open("/expo")
    cold = pages.open("/screen/cold")
    grill = pages.open("/screen/grill")
    a = api.post_order(order("a", item(1, "Burger")))
    expect(card(grill, a)).to_be_visible()
    expo.bring_to_front()
    card(expo, a).locator("button.move[data-from='grill']").click()
    expo.locator("dialog .move-to[data-to='cold']").click()
    wait_for(lambda: "cold" in api.order(a["id"])["endpointStatuses"], what="moved in the API")
    assert api.status_at(a["id"], "grill") == "processSkipped"
    expect(card(cold, a).locator(".item .name")).to_have_text(["Burger"])
    # The grill's card says where the ticket went, not that it was cancelled.
    expect(card(grill, a).locator(".void-banner")).to_have_text("MOVED TO cold")


def test_reports_page_draws_the_chart_and_tables(api: Api, pages: Pages) -> None:
    a = api.post_order(order("a", item(1, "Burger"), item(2, "Pilsner", group="Drinks")))
    api.request("POST", f"/api/v1/orders/{a['id']}/status", {"status": "delivered"})
    api.request("POST", f"/api/v1/orders/{a['id']}/status", {"status": "processed"})
    page = pages.open("/reports")
    expect(page.locator("svg.report-chart rect.bar")).to_have_count(4)  # 2 bars + 2 legend keys
    expect(page.locator("table.report-table")).to_have_count(3)
    station_rows = page.locator("table.report-table").first.locator("tbody tr")
    expect(station_rows).to_have_count(2)
    expect(page.locator("table.products tbody tr")).to_have_count(2)
    assert "format=csv" in (page.locator("a.csv").get_attribute("href") or "")
    page.screenshot(path=str(SCREENSHOTS / "reports.png"), full_page=True)
