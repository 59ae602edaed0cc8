"""A screen that was never paired explains how to pair it, instead of showing raw JSON."""

from __future__ import annotations

from typing import Any

import pytest

from kds.api.auth import hash_token

from .conftest import SCREENSHOTS, expect


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    kds_config["security"] = {
        "access": "tokens",
        "tokens": [
            {"name": "grill-screen", "role": "kitchen", "sha256": hash_token("kitchen-token")}
        ],
    }
    return kds_config


def test_an_unpaired_screen_explains_pairing(browser: Any, kds: Any) -> None:
    # access = "tokens" and a screen that was never paired: the page says so and how to pair;
    # after following the pairing link the station screen opens.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    response = page.goto(f"{kds.url}/screen/grill")
    assert response is not None and response.status == 401
    expect(page.locator("h1")).to_have_text("This screen is not paired yet")
    expect(page.locator(".pairing-help")).to_contain_text("kds token --role kitchen")
    page.screenshot(path=str(SCREENSHOTS / "not-paired.png"))
    page.goto(f"{kds.url}/pair?token=kitchen-token&next=/screen/grill")
    expect(page.locator("body[data-connected=yes][data-synced=yes]")).to_be_attached()
    assert page.url.endswith("/screen/grill")
    context.close()
