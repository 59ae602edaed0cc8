"""What a new operator sees first: an empty kitchen, the sound prompt, an unpaired screen."""

from __future__ import annotations

import pytest

from .conftest import VIEWPORTS, Pages, block_sound, expect


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize(
    "path,area", [("/screen/grill", ".board-wrap"), ("/expo", "#view"), ("/board", "#view")]
)
def test_no_open_orders_is_centred(pages: Pages, path: str, area: str) -> None:
    # With nothing open, "No open orders" sits in the middle of the area where tickets would be.
    page = pages.open(path)
    empty = page.locator("div.empty")
    expect(empty).to_be_visible()
    expect(empty).to_have_text("No open orders")
    box = page.locator("div.empty").evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e); const b = r.getBoundingClientRect();"
        " return [b.left + b.width / 2, b.top + b.height / 2]; }"
    )
    frame = page.locator(area).bounding_box()
    assert frame is not None
    assert abs(box[0] - (frame["x"] + frame["width"] / 2)) < 0.05 * frame["width"]
    assert abs(box[1] - (frame["y"] + frame["height"] / 2)) < 0.05 * frame["height"]


def test_the_sound_prompt_replaces_the_sound_toggle_until_sound_works(pages: Pages) -> None:
    # Before the first tap the browser blocks audio: only "Tap to enable sound" shows, never
    # beside "Sound on"; once tapped, the prompt goes and the toggle says "Sound on".
    page = pages.open("/screen/grill")
    block_sound(page)
    prompt = page.locator(".enable-sound")
    toggle = page.locator(".sound-toggle")
    expect(prompt).to_be_visible()
    expect(toggle).to_be_hidden()
    prompt.click()
    expect(prompt).to_be_hidden()
    expect(toggle).to_be_visible()
    expect(toggle).to_have_text("Sound on")
