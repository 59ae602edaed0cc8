"""Late tickets stand out: a red header with readable text, the word LATE, optional flashing and sound."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .colors import contrast
from .conftest import Api, Pages, block_sound, expect, item, order


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    # The grill is late after a minute and flashes and sounds; the cold station only turns red.
    kds_config["endpoints"][0]["timers"] = {
        "warn_after": "30s",
        "late_after": "60s",
        "late_flash": True,
        "late_sound": True,
    }
    kds_config["endpoints"][1]["timers"] = {"warn_after": "30s", "late_after": "60s"}
    return kds_config


def test_late_header_is_red_with_readable_text_and_the_word_late(api: Api, pages: Pages) -> None:
    # At late_after the whole header turns red, every text on it at least 4.5:1, and LATE is
    # written (not colour alone). The browser's clock is driven: no waiting for a real minute.
    cold = pages.open("/screen/cold", clock=True)
    a = api.post_order(order("late", item(1, "Caesar salad")))
    card = cold.locator(f"article.card[data-id='{a['id']}']")
    expect(card).to_have_class(re.compile(r"\bt-ok\b"))
    expect(card.locator(".late-tag")).to_be_hidden()
    cold.clock.fast_forward(61_000)
    expect(card).to_have_class(re.compile(r"\bt-late\b"))
    expect(card.locator(".late-tag")).to_have_text("LATE")
    expect(card.locator(".late-tag")).to_be_visible()
    # Wait for a computed colour before reading it once (right after the class change it can be unset).
    expect(card.locator(".card-head")).to_have_css("background-color", re.compile(r"rgb"))
    red, green, blue = map(
        int,
        re.findall(
            r"\d+", card.locator(".card-head").evaluate("e => getComputedStyle(e).backgroundColor")
        )[:3],
    )
    assert red > 120 and red > 2.5 * max(green, blue), (red, green, blue)
    for part in (".num", ".timer", ".late-tag", ".who", ".state"):
        ratio = contrast(card.locator(part))
        assert ratio >= 4.5, f"{part}: {ratio:.2f}:1"
    assert card.locator(".card-head").evaluate("e => getComputedStyle(e).animationName") == "none"


def test_late_flash_and_sound_when_configured(api: Api, pages: Pages) -> None:
    # With timers.late_flash and timers.late_sound the header flashes and one alarm sounds
    # when the ticket turns late (not again every second).
    grill = pages.open("/screen/grill", clock=True)
    grill.bring_to_front()
    # The tap browsers want before audio (Playwright's own calls count as taps: see block_sound).
    block_sound(grill)
    grill.locator("button.enable-sound").click()
    assert grill.evaluate("window.kds.sound.context.state") == "running"
    a = api.post_order(order("flash", item(1, "Steak")))
    card = grill.locator(f"article.card[data-id='{a['id']}']")
    expect(card).to_be_visible()
    grill.clock.fast_forward(61_000)
    expect(card).to_have_class(re.compile(r"\bt-late\b"))
    assert card.locator(".card-head").evaluate("e => getComputedStyle(e).animationName") != "none"
    expect(grill.locator("body[data-late-alarms='1']")).to_be_attached()
    grill.clock.fast_forward(5_000)
    expect(card.locator(".timer")).to_have_text(
        re.compile(r"^1:(0[6-9]|[1-5]\d)$")
    )  # ticked on, still late
    expect(grill.locator("body[data-late-alarms='1']")).to_be_attached()
