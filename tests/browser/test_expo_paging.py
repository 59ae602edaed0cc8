"""The expo screen pages like the stations: whole cards only, a page indicator, keys to turn."""

from __future__ import annotations

import pytest

from .conftest import VIEWPORTS, Api, Pages, expect, item, order

#: JS: ids of expo cards shown whole inside the view, and of cards shown but cut.
ON_SCREEN = """() => {
  const view = document.querySelector('.expo').getBoundingClientRect();
  const whole = [], cut = [];
  for (const card of document.querySelectorAll('article.expo-card')) {
    const r = card.getBoundingClientRect();
    if (!card.checkVisibility() || r.height === 0) continue;
    (r.top >= view.top - 1 && r.bottom <= view.bottom + 1 ? whole : cut).push(card.dataset.id);
  }
  return {whole, cut};
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_expo_pages_whole_cards_and_turns_with_keys(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # 40 open orders do not fit one expo screen: each page shows whole cards only, PageDown /
    # arrows turn the page, and every order is on some page.
    made = [
        api.post_order(order(f"x{n}", item(1, f"Burger {n}"), item(2, "Pilsner", group="Drinks")))
        for n in range(40)
    ]
    expo = pages.open("/expo")
    expect(expo.locator("body[data-open='40']")).to_be_attached()
    total = int(expo.evaluate("document.body.dataset.pages"))
    assert total > 1
    expect(expo.locator(".pager")).to_contain_text(f"1 of {total}")
    seen: list[str] = []
    for number in range(1, total + 1):
        expect(expo.locator(f"body[data-page='{number}']")).to_be_attached()
        shown = expo.evaluate(ON_SCREEN)
        assert not shown["cut"], f"cut cards on page {number}: {shown['cut']}"
        assert shown["whole"]
        seen += shown["whole"]
        expo.keyboard.press("PageDown")
    assert sorted(seen) == sorted(o["id"] for o in made)
    expo.keyboard.press("ArrowLeft")
    expect(expo.locator(f"body[data-page='{total - 1}']")).to_be_attached()
