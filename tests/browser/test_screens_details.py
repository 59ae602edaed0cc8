"""What a cook and a cashier must read on screen: customer, refusal reason, RECALLED, whole badges, text size."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, Pages, expect, item, order, wait_for

VIEWPORTS = [{"width": 1920, "height": 1080}, {"width": 1280, "height": 800}]


def to(api: Api, made: dict[str, Any], endpoint: str, *statuses: str, **extra: Any) -> None:
    """Walk `made` through `statuses` at `endpoint` (the last one with `extra`, e.g. a reason)."""
    wait_for(lambda: api.status_at(made["id"], endpoint) != "created", what="routed")
    for n, status in enumerate(statuses):
        body = {"status": status, **(extra if n == len(statuses) - 1 else {})}
        api.request("POST", f"/api/v1/orders/{made['id']}/endpoints/{endpoint}/status", body)


def test_customer_refusal_reason_and_recalled_are_on_screen(api: Api, pages: Pages) -> None:
    # The take-away customer's name is on the kitchen cards and the board; a refusal's reason
    # reaches the expo and the cashier board; a recalled ticket says RECALLED.
    takeaway = api.post_order(
        order(
            "ta",
            item(1, "Chicken wings"),
            item(2, "Pilsner", group="Drinks"),
            ticket={
                "name": "Pickup",
                "purchaseType": "takeAway",
                "customer": {"name": "Eva Nováková"},
            },
        )
    )
    delivery = api.post_order(
        order(
            "d",
            item(1, "Veggie burger"),
            ticket={"name": "Wolt 4471", "purchaseType": "delivery", "customer": "Jan Kováč"},
        )
    )
    recalled = api.post_order(order("re", item(1, "Burger")))
    to(api, recalled, "grill", "delivered", "processed")
    to(api, recalled, "grill", "accepted", recall=True)
    to(api, takeaway, "bar", "delivered", "refused", reason="Out of stock")

    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    for page in (grill, expo):
        expect(page.locator(f"article.card[data-id='{takeaway['id']}'] .customer")).to_have_text(
            "Eva Nováková"
        )
        expect(page.locator(f"article.card[data-id='{delivery['id']}'] .customer")).to_have_text(
            "Jan Kováč"
        )
        expect(page.locator(f"article.card[data-id='{recalled['id']}'] .recalled")).to_have_text(
            "RECALLED"
        )
        expect(page.locator(f"article.card[data-id='{takeaway['id']}'] .recalled")).to_have_count(0)
    expect(board.locator(f".row[data-id='{takeaway['id']}'] .customer")).to_have_text(
        "Eva Nováková"
    )
    expect(
        expo.locator(f"article.card[data-id='{takeaway['id']}'] .item[data-item-id='2'] .refusal")
    ).to_have_text("Refused: Out of stock")
    expect(board.locator(f".row[data-id='{takeaway['id']}'] .refusal")).to_have_text(
        "Refused: Out of stock"
    )
    expect(
        board.locator(f".row[data-id='{takeaway['id']}'] .chip[data-endpoint='bar']")
    ).to_have_text("bar Refused")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["1920x1080", "1280x800"])
@pytest.mark.parametrize("size", ["m", "l"])
def test_german_badges_are_never_cut(
    api: Api, browser: Any, kds: Any, viewport: dict[str, int], size: str
) -> None:
    # "Zum Mitnehmen" and other long badges fit their card or wrap between words (never a
    # letter per line), at every text size.
    # A recalled one: ZURÜCKGEHOLT beside the badge crowds the head most (first, so on page 1).
    recalled = api.post_order(
        order("gr", item(1, "Bratwurst"), ticket={"name": "Web", "purchaseType": "takeAway"})
    )
    to(api, recalled, "grill", "delivered", "processed")
    to(api, recalled, "grill", "accepted", recall=True)
    for n in range(8):
        api.post_order(
            order(
                f"g{n}", item(1, "Currywurst"), ticket={"name": "Web", "purchaseType": "takeAway"}
            )
        )
    api.post_order(
        order(
            "gd",
            item(1, "Schnitzel"),
            ticket={"name": "Lieferando 88812", "purchaseType": "delivery"},
        )
    )
    context = browser.new_context(viewport=viewport)
    pages = Pages(context, kds.url)
    page = pages.open("/screen/grill?lang=de")
    if size != "m":
        page.locator("select.text-size").select_option(size)
    expect(page.locator("article.card .badge.takeaway").first).to_have_text("Zum Mitnehmen")
    cut = page.evaluate("""() => [...document.querySelectorAll('.cards article.card .badge')].filter((b) => {
        const card = b.closest('article.card').getBoundingClientRect();
        const r = b.getBoundingClientRect();
        const twoLines = parseFloat(getComputedStyle(b).fontSize) * 3.2;  // squeezed into a letter per line?
        return b.scrollWidth > b.clientWidth + 1 || r.right > card.right + 0.5 || r.left < card.left - 0.5 || r.height > twoLines;
    }).map((b) => b.textContent)""")
    assert page.locator(".cards article.card").count() > 0
    assert cut == []
    context.close()
    assert not pages.errors


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["1920x1080", "1280x800"])
def test_text_size_per_screen_by_keyboard_and_remembered(
    api: Api, browser: Any, kds: Any, viewport: dict[str, int]
) -> None:
    # S/M/L in the toolbar, reached with Tab and changed with the arrow keys (which then do
    # not page the tickets); the size is kept for this screen only, across a reload; the
    # station lays its tickets out again in wider columns.
    for n in range(12):
        api.post_order(order(f"s{n}", item(1, "Steak"), item(2, "Fries")))
    context = browser.new_context(viewport=viewport)
    pages = Pages(context, kds.url)
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card").first).to_be_visible()
    font = "() => getComputedStyle(document.body).fontSize"
    columns = "() => getComputedStyle(document.querySelector('.cards')).getPropertyValue('--cols')"
    assert grill.evaluate(font) == "18px"
    before = int(grill.evaluate(columns))
    select = grill.locator("select.text-size")
    for _ in range(30):
        if grill.evaluate(
            "document.activeElement && document.activeElement.matches('select.text-size')"
        ):
            break
        grill.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the text size control")
    grill.keyboard.press("ArrowDown")
    expect(select).to_have_value("l")
    assert grill.evaluate(font) == "24px"
    expect(grill.locator("body[data-page='1']")).to_be_attached()  # the arrow did not page
    wait_for(lambda: int(grill.evaluate(columns)) < before, what="wider columns for large text")
    grill.reload()
    expect(grill.locator("body[data-synced=yes]")).to_be_attached()
    expect(grill.locator("select.text-size")).to_have_value("l")
    assert grill.evaluate(font) == "24px"
    bar = pages.open("/screen/bar")
    expect(bar.locator("select.text-size")).to_have_value("m")
    assert bar.evaluate(font) == "18px"
    context.close()
    assert not pages.errors
