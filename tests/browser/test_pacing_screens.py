"""Pacing on screen: a held course greyed with words and fired from the expo, a prep-time
wait counting down on the expo, a scheduled order on the cashier board and off the stations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import SCREENSHOTS, Api, Pages, expect, item, order, wait_for


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    """The grill holds later courses; grilled dishes take 12 minutes, salads 4."""
    kds_config["endpoints"][0]["hold_courses"] = True
    kds_config["prep_times"] = [
        {"product_group": "Grill", "time": "12m"},
        {"name_pattern": "*salad*", "time": "4m"},
    ]
    return kds_config


def coursed(api: Api) -> dict[str, Any]:
    return api.post_order(
        order("c1", item(1, "Tomato soup", courseNumber=1), item(2, "Ribeye", courseNumber=2))
    )


def test_held_course_is_greyed_as_held_and_fired_from_the_expo(api: Api, pages: Pages) -> None:
    # Guarantees: a held item says HELD in words (not colour only) on the station and the expo,
    # cannot be bumped from the station; the expo's Fire button releases it everywhere live.
    made = coursed(api)
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    held = f"article.card[data-id='{made['id']}'] li.item[data-item-id='2']"
    for page in (grill, expo):
        expect(page.locator(f"{held}.held .hold")).to_have_text("HELD")
        expect(
            page.locator(f"article.card[data-id='{made['id']}'] li.item[data-item-id='1']")
        ).not_to_have_class("held")
    grill.locator(held).click()  # a held line is not a bump
    expect(board.locator(f"div.row[data-id='{made['id']}'] button.fire")).to_have_text(
        "Fire course 2"
    )
    assert api.item_status(made["id"], 2, "grill") == "created"
    expo.locator(f"article.card[data-id='{made['id']}'] button.fire").click()
    wait_for(lambda: api.item_status(made["id"], 2, "grill") != "created", what="course 2 fired")
    for page in (grill, expo):
        expect(page.locator(held)).not_to_have_class("held")
        expect(page.locator(f"{held} .hold")).to_have_count(0)
    expect(board.locator(f"div.row[data-id='{made['id']}'] button.fire")).to_have_count(0)


def test_a_quicker_dish_shows_when_it_starts_on_the_expo(api: Api, pages: Pages) -> None:
    # Guarantees: the salad waiting for the steak shows "starts in m:ss" counting down (8 minutes
    # at the start), the steak is not held.
    made = api.post_order(
        order("p1", item(1, "Ribeye", group="Grill"), item(2, "Caesar salad", group="Cold"))
    )
    expo = pages.open("/expo")
    card = expo.locator(f"article.card[data-id='{made['id']}']")
    expect(card.locator("li.item[data-item-id='2'] .hold")).to_have_text(
        re.compile(r"^starts in 7:[0-5]\d$")
    )
    expect(card.locator("li.item[data-item-id='1'] .hold")).to_have_count(0)
    first = card.locator("li.item[data-item-id='2'] .hold").text_content()
    expect(card.locator("li.item[data-item-id='2'] .hold")).not_to_have_text(first, timeout=3000)


def test_scheduled_order_is_on_the_board_with_its_time_and_off_the_stations(
    api: Api, pages: Pages
) -> None:
    # Guarantees: an order due in 2 hours is "Scheduled HH:MM" (its due time, local) on the
    # board, and neither the grill station nor the expo shows it yet; a current order does.
    due = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    later = api.post_order(order("s1", item(1, "Burger"), dueAt=due.isoformat()))
    now = api.post_order(order("n1", item(1, "Fries")))
    board = pages.open("/board")
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    local = due.astimezone().strftime("%H:%M")
    row = board.locator(f"div.row[data-id='{later['id']}']")
    expect(row.locator(".overall")).to_have_text(f"Scheduled {local}")
    expect(row).to_have_class(re.compile(r"\bscheduled\b"))
    for page in (grill, expo):
        expect(page.locator(f"article.card[data-id='{now['id']}']")).to_be_visible()
        expect(page.locator(f"article.card[data-id='{later['id']}']")).to_have_count(0)


def test_screenshots_of_a_held_course_and_a_prep_wait(api: Api, pages: Pages) -> None:
    # The README's pictures of pacing: the grill with course 2 held (greyed, HELD), the expo
    # with the Fire button and a salad that starts later; each checked before it is captured.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    held = coursed(api)
    paced = api.post_order(
        order(
            "p2",
            item(1, "Ribeye", group="Grill", modifiers=["pepper sauce"]),
            item(2, "Caesar salad", group="Cold"),
            item(3, "Pilsner", group="Drinks"),
        )
    )
    grill = pages.open("/screen/grill")
    expect(grill.locator(f"article.card[data-id='{held['id']}'] li.item.held .hold")).to_have_text(
        "HELD"
    )
    grill.evaluate("window.kds.sound.enabled = false; window.kds.sound._changed()")
    grill.screenshot(path=str(SCREENSHOTS / "held-course.png"))
    expo = pages.open("/expo")
    expect(expo.locator(f"article.card[data-id='{held['id']}'] button.fire")).to_be_visible()
    expect(expo.locator(f"article.card[data-id='{paced['id']}'] li.item.held .hold")).to_have_text(
        re.compile(r"^starts in \d+:\d\d$")
    )
    expo.evaluate("window.kds.sound.enabled = false; window.kds.sound._changed()")
    expo.screenshot(path=str(SCREENSHOTS / "expo-pacing.png"))


def test_every_expo_action_stays_inside_its_card(api: Api, pages: Pages) -> None:
    # Guarantees: with rush, a move per station, fire and bump, the expo card's buttons wrap
    # inside the card (none is cut off at its edge).
    made = api.post_order(
        order(
            "w1",
            item(1, "Tomato soup", courseNumber=1),
            item(2, "Ribeye", courseNumber=2),
            item(3, "Caesar salad", group="Cold", courseNumber=1),
            item(4, "Pilsner", group="Drinks"),
        )
    )
    expo = pages.open("/expo")
    card = expo.locator(f"article.card[data-id='{made['id']}']")
    expect(card.locator("button.fire")).to_be_visible()
    box = card.bounding_box()
    for button in card.locator("footer button").all():
        inner = button.bounding_box()
        assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 0.5, button.text_content()
