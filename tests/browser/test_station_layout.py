"""Station layout: how many tickets a page holds, and long tickets that overflow a column."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import VIEWPORTS, Api, Pages, expect, item, order


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
def test_first_layout_with_open_orders_uses_the_whole_board(api: Api, pages: Pages, viewport: tuple[int, int]) -> None:
    # A screen loaded while orders are open fills its page at once: the "No open orders"
    # placeholder must not take room in the first layout (it did: 6 tickets instead of 9
    # at 1280x800 until the next event).
    open_orders(api, 40)
    grill = pages.open("/screen/grill")
    expect(grill.locator("body[data-open='40']")).to_be_attached()
    expect(grill.locator(".empty")).to_be_hidden()
    first = grill.locator("article.card").count()
    room = grill.evaluate(SPARE_ROOM)
    assert all(spare < room["shortest"] + 10 for spare in room["spare"]), f"{first} tickets, room left: {room}"
    columns = grill.locator(".cards .col").count()
    assert columns == (5 if viewport[0] == 1920 else 3)  # 300 px a column beside the all-day panel
    grill.evaluate("window.kds.view.layout()")  # what the next event would draw
    assert grill.locator("article.card").count() == first
