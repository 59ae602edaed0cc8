"""Printer trouble reaches the screens: the station of that printer, the expo and the board say so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.util import free_port

from .conftest import Api, Pages, expect, item, order


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    # The bar has a screen and a kitchen printer that is switched off (nothing listens).
    bar = next(e for e in kds_config["endpoints"] if e["name"] == "bar")
    bar["printer"] = {
        "address": f"127.0.0.1:{free_port()}",
        "connect_timeout": 0.5,
        "retry_initial": 0.2,
    }
    return kds_config


def test_printer_fault_shows_on_its_station_expo_and_board(api: Api, pages: Pages) -> None:
    # The dead printer is found by the spooler's probe at start, before any ticket: its
    # station, the expo and the board say so; the grill (another printer-less station) does not.
    bar = pages.open("/screen/bar")
    grill = pages.open("/screen/grill")
    board = pages.open("/board")
    expo = pages.open("/expo")
    alert = bar.locator(".printer-banner")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Bar printer: offline")
    api.post_order(order("p", item(1, "Cheeseburger"), item(2, "Pilsner", group="Drinks")))
    expect(board.locator(".printer-banner")).to_contain_text("Bar printer: offline")
    expect(expo.locator(".printer-banner")).to_contain_text("Bar printer: offline")
    expect(grill.locator(".printer-banner")).to_be_hidden()
    # A screen opened later learns it from the snapshot.
    late = pages.open("/screen/bar")
    expect(late.locator(".printer-banner")).to_contain_text("Bar printer: offline")
