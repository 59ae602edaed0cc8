"""Per-endpoint config on a station: elapsed-time thresholds and the bump-bar key mapping."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Api, Pages, expect, item, order, wait_for


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    # Short thresholds and a bump-bar mapping for the grill.
    grill = kds_config["endpoints"][0]
    grill["timers"] = {"warn_after": "30s", "late_after": "60s"}
    grill["keys"] = {"b": "bump", "q": "accept", "Enter": "none"}
    return kds_config


def test_timer_turns_amber_then_red_at_the_thresholds(api: Api, pages: Pages) -> None:
    # The browser's clock is driven by the test: no waiting for real minutes.
    grill = pages.open("/screen/grill", clock=True)
    a = api.post_order(order("t", item(1, "Steak")))
    card = grill.locator(f"article.card[data-id='{a['id']}']")
    expect(card).to_have_class(re.compile(r"\bt-ok\b"))
    grill.clock.fast_forward(31_000)
    expect(card).to_have_class(re.compile(r"\bt-warn\b"))
    grill.clock.fast_forward(30_000)
    expect(card).to_have_class(re.compile(r"\bt-late\b"))
    expect(card.locator(".timer")).to_have_text("1:01")


def test_endpoint_key_mapping_overrides_the_defaults(api: Api, pages: Pages) -> None:
    # An endpoint's `keys` config remaps the bump bar: here b bumps, q accepts, Enter does nothing.
    a = api.post_order(order("m", item(1, "Steak")))
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card")).to_have_count(1)
    wait_for(lambda: api.status_at(a["id"], "grill") == "delivered", what="acknowledged")
    grill.keyboard.press("1")
    grill.keyboard.press("q")
    wait_for(lambda: api.status_at(a["id"], "grill") == "accepted", what="accepted with q")
    grill.keyboard.press("Enter")
    grill.keyboard.press("b")
    wait_for(lambda: api.status_at(a["id"], "grill") == "processed", what="bumped with b")
