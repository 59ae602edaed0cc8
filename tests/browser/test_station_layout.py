"""Station layout: how many tickets a page holds, and long tickets that overflow a column."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import VIEWPORTS, Api, Pages, expect, item, order, wait_for


def open_orders(api: Api, count: int) -> list[dict[str, Any]]:
    """`count` one-line tickets for the grill, already acknowledged (no event follows a load)."""
    made = [api.post_order(order(f"lay{n}", item(1, f"Burger {n}"))) for n in range(count)]
    for o in made:
        api.set_endpoint_status(o["id"], "grill", "delivered")
    return made


#: Room left under each column of the page, and the shortest ticket on it (px).
SPARE_ROOM = """() => {
  const board = document.querySelector('.cards');
  const cols = [...board.querySelectorAll('.col')];
  const heights = cols.flatMap((c) => [...c.children].map((e) => e.offsetHeight));
  const spare = cols.map((c) => board.clientHeight - [...c.children].reduce((s, e) => s + e.offsetHeight + 10, -10));
  return {spare, shortest: Math.min(...heights)};
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_first_layout_with_open_orders_uses_the_whole_board(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # A screen loaded while orders are open fills its page at once: the "No open orders"
    # placeholder must not take room in the first layout (it did: 6 tickets instead of 9
    # at 1280x800 until the next event).
    open_orders(api, 40)
    grill = pages.open("/screen/grill")
    expect(grill.locator("body[data-open='40']")).to_be_attached()
    expect(grill.locator(".empty")).to_be_hidden()
    first = grill.locator("article.card").count()
    room = grill.evaluate(SPARE_ROOM)
    assert all(spare < room["shortest"] + 10 for spare in room["spare"]), (
        f"{first} tickets, room left: {room}"
    )
    columns = grill.locator(".cards .col").count()
    assert columns == (5 if viewport[0] == 1920 else 3)  # 300 px a column beside the all-day panel
    grill.evaluate("window.kds.view.layout()")  # what the next event would draw
    assert grill.locator("article.card").count() == first


#: JS: ids of the order's item lines fully visible inside the board, and whether any list scrolls.
SEEN_ITEMS = """(id) => {
  const board = document.querySelector('.cards').getBoundingClientRect();
  const parts = [...document.querySelectorAll(`[data-id="${id}"], [data-cont-of="${id}"]`)];
  const seen = [];
  for (const part of parts) {
    for (const li of part.querySelectorAll('.item')) {
      const r = li.getBoundingClientRect();
      if (r.height > 0 && r.top >= board.top - 1 && r.bottom <= board.bottom + 1) seen.push(Number(li.dataset.itemId));
    }
  }
  const scrolls = parts.some((p) => [...p.querySelectorAll('.items')].some((l) => l.scrollHeight > l.clientHeight + 1));
  return {seen, scrolls, marks: document.querySelectorAll('.cont-mark:not([hidden])').length};
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_long_ticket_continues_in_the_next_column_and_hides_nothing(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # A 25-item order used to scroll inside its card with items 12-25 out of sight. Now it
    # continues in the next column ("continued"), each cut marked; every line is on screen
    # (or, past the last column, on the next page, still marked).
    before = api.post_order(order("short", item(1, "Soup")))
    long = api.post_order(
        order(
            "long",
            *[
                item(n, f"Dish number {n}", modifiers=["no salt"] if n % 4 == 0 else [])
                for n in range(1, 26)
            ],
        )
    )
    grill = pages.open("/screen/grill")
    expect(grill.locator("body[data-open='2']")).to_be_attached()
    seen: set[int] = set()
    for _ in range(int(grill.evaluate("document.body.dataset.pages"))):
        state = grill.evaluate(SEEN_ITEMS, long["id"])
        assert not state["scrolls"], "a ticket scrolls inside its card"
        seen |= set(state["seen"])
        grill.keyboard.press("PageDown")
    assert seen == set(range(1, 26)), f"never on screen: {sorted(set(range(1, 26)) - seen)}"
    while grill.evaluate("document.body.dataset.page") != "1":
        grill.keyboard.press("PageUp")
    expect(grill.locator(f"[data-cont-of='{long['id']}'] .cont-head").first).to_contain_text(
        f"#{long['number']}"
    )
    expect(grill.locator(f"[data-cont-of='{long['id']}'] .cont-head").first).to_contain_text(
        "continued"
    )
    expect(grill.locator(f"article.card[data-id='{long['id']}'] .cont-mark")).to_be_visible()
    # The continued part works like the card: tapping a line bumps it.
    line = grill.locator(f"[data-cont-of='{long['id']}'] .item").first
    item_id = int(line.get_attribute("data-item-id"))
    wait_for(lambda: api.status_at(long["id"], "grill") == "delivered", what="acknowledged")
    line.click()
    wait_for(
        lambda: api.item_status(long["id"], item_id, "grill") == "processed",
        what="continued line bumped",
    )
    assert api.status_at(before["id"], "grill") == "delivered"
