"""300 open orders: the station pages them, the board lists them, both stay responsive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Api, Pages, expect, item, order, wait_for

COUNT = 300


def test_300_open_orders_render_and_stay_responsive(api: Api, pages: Pages) -> None:
    # Only the current page of cards is in the document; paging, selecting and bumping
    # keep working, and a full relayout of 300 orders stays well under a second.
    bodies = [
        order(
            f"load-{n}",
            item(1, "Cheeseburger", qty=1 + n % 3, modifiers=["no onion"] if n % 2 else []),
            item(2, "Fries", comment="extra crispy" if n % 5 == 0 else None),
            item(3, "Pilsner", group="Drinks"),
        )
        for n in range(COUNT)
    ]
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(api.post_order, bodies))
    grill = pages.open("/screen/grill")
    expect(grill.locator(f"body[data-open='{COUNT}']")).to_be_attached(timeout=15_000)
    pages_count = int(grill.evaluate("document.body.dataset.pages"))
    assert pages_count > 1
    shown = grill.locator("article.card").count()
    assert 0 < shown < COUNT
    expect(grill.locator(".toolbar .count")).to_have_text(str(COUNT))
    expect(grill.locator(".allday-list li[data-product='Cheeseburger'] .ad-count")).to_have_text(
        str(sum(1 + n % 3 for n in range(COUNT)))
    )

    elapsed = grill.evaluate(
        "() => { const t = performance.now(); window.kds.view.layout(); return performance.now() - t; }"
    )
    assert elapsed < 1000, f"a relayout of {COUNT} orders took {elapsed:.0f} ms"

    grill.keyboard.press("ArrowRight")
    expect(grill.locator("body[data-page='2']")).to_be_attached()
    grill.keyboard.press("ArrowLeft")
    expect(grill.locator("body[data-page='1']")).to_be_attached()

    first_id = grill.locator("article.card[data-slot='1']").get_attribute("data-id")
    oldest = next(o for o in made if o["id"] == first_id)
    assert oldest["createdAt"] == min(o["createdAt"] for o in made)  # newest last
    wait_for(
        lambda: api.status_at(oldest["id"], "grill") == "delivered", timeout=15, what="acknowledged"
    )
    grill.keyboard.press("1")
    expect(grill.locator("article.card.selected")).to_have_attribute("data-id", oldest["id"])
    grill.keyboard.press("Enter")
    wait_for(lambda: api.status_at(oldest["id"], "grill") == "processed", what="bumped")
    expect(grill.locator(f"body[data-open='{COUNT - 1}']")).to_be_attached()

    board = pages.open("/board")
    expect(board.locator(".row")).to_have_count(COUNT, timeout=15_000)
    expo = pages.open("/expo")
    expect(expo.locator("article.card")).to_have_count(COUNT, timeout=15_000)
