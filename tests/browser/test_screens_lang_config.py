"""The configured screen language: [ui] lang applies everywhere, ?lang= overrides it."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Pages, expect


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    kds_config["ui"]["lang"] = "de"
    return kds_config


def test_configured_language_applies_and_query_overrides_it(pages: Pages) -> None:
    # [ui] lang = "de" is the default of every screen; ?lang= still wins.
    pickup = pages.open("/pickup")
    expect(pickup.locator(".col-preparing h2")).to_have_text("In Zubereitung")
    expect(pickup.locator(".col-ready h2")).to_have_text("Fertig")
    board = pages.open("/board?lang=ru")
    expect(board.locator(".toolbar .title")).to_have_text("Заказы")
    unknown = pages.open("/expo?lang=xx")
    expect(unknown.locator("html")).to_have_attribute("lang", "de")
