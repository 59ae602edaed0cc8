"""Timer thresholds reach the screens only from the config (no numbers of the screens' own).

A station's own thresholds: test_station_config.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Api, Pages, expect, item, order


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    # Thresholds far from the built-in 5m / 10m, different per station.
    grill, cold, bar = kds_config["endpoints"]
    grill["timers"] = {"warn_after": "30s", "late_after": "60s"}
    cold["timers"] = {"warn_after": "20s", "late_after": "45s"}
    bar["timers"] = {"warn_after": "10s", "late_after": "40s"}
    return kds_config


def test_expo_colours_by_the_most_patient_stations_configured_thresholds(
    api: Api, pages: Pages
) -> None:
    # The expo turns amber and red at the largest warn_after / late_after of the config
    # (30s and 60s here), as /api/v1/ui serves them. The browser's clock is driven.
    expo = pages.open("/expo", clock=True)
    assert expo.evaluate("fetch('/api/v1/ui').then(r => r.json()).then(u => u.expoTimers)") == {
        "warnAfter": 30,
        "lateAfter": 60,
    }
    a = api.post_order(order("x", item(1, "Steak"), item(2, "Beer", group="Drinks")))
    card = expo.locator(f"article.expo-card[data-id='{a['id']}']")
    expect(card).to_have_class(re.compile(r"\bt-ok\b"))
    expo.clock.fast_forward(25_000)  # past cold's and bar's warn_after, not the grill's
    expect(card.locator(".timer")).to_have_text(re.compile(r"^0:2[5-9]$"))
    expect(card).to_have_class(re.compile(r"\bt-ok\b"))
    expo.clock.fast_forward(6_000)
    expect(card).to_have_class(re.compile(r"\bt-warn\b"))
    expo.clock.fast_forward(30_000)
    expect(card).to_have_class(re.compile(r"\bt-late\b"))
