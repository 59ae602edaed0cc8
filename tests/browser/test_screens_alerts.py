"""Printer alerts in words, where the kitchen looks, with a sound; a failed print is not a failed order."""

from __future__ import annotations

from typing import Any

import pytest

from tests.util import free_port

from .conftest import Api, Pages, block_sound, expect, item, order, wait_for
from .test_screens_printer_retry import _control, bar_printer  # noqa: F401 - a fixture


@pytest.fixture
def kds_config(kds_config: dict[str, Any], bar_printer: dict[str, Any]) -> dict[str, Any]:
    # The bar has a screen and a printer (probed every 0.2 s); "pass" is a printer-only endpoint
    # whose printer is unplugged. Desserts go to the pass.
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "online"}) is not None
    bar = next(e for e in kds_config["endpoints"] if e["name"] == "bar")
    bar["printer"] = {
        "address": bar_printer["address"],
        "connect_timeout": 0.5,
        "attempts": 1,
        "probe_interval": 0.2,
    }
    kds_config["endpoints"].append(
        {
            "name": "pass",
            "display": False,
            "printer": {"address": f"127.0.0.1:{free_port()}", "connect_timeout": 0.5},
        }
    )
    kds_config["routing"]["rules"].append({"product_group": "Desserts", "endpoint": "pass"})
    return kds_config


def banner(page: Any) -> Any:
    """The lines of the printer banner (text only, without the Retry buttons)."""
    return page.locator("#printer-banner .printer-text")


def unlock_sound(page: Any) -> None:
    """Put the page in the browser's no-sound-before-a-tap state, then tap 'enable sound'."""
    page.bring_to_front()
    block_sound(page)
    page.locator("button.enable-sound").click()
    expect(page.locator("button.enable-sound")).to_be_hidden()


def test_printer_faults_in_words_on_the_screens_that_need_them_with_an_alarm(
    api: Api, pages: Pages, bar_printer: dict[str, Any]
) -> None:
    # The unplugged printer-only "pass" printer shows at once (probed at start) on every station
    # (nobody watches a pass screen), the expo and the board; the bar's paper running out shows on
    # the bar's screen, the expo and the board — not on the grill — and sounds the alarm.
    bar = pages.open("/screen/bar")
    grill = pages.open("/screen/grill")
    expo = pages.open("/expo")
    board = pages.open("/board")
    pickup = pages.open("/pickup")
    for page in (bar, grill, expo, board):
        expect(banner(page)).to_have_text(["Pass printer: offline"])
    expect(pickup.locator("#printer-banner")).to_be_hidden()

    unlock_sound(bar)
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "paper_out"}) is not None
    expect(banner(bar)).to_have_text(["Bar printer: out of paper", "Pass printer: offline"])
    expect(bar.locator("body[data-alarms='1']")).to_be_attached()
    expect(banner(expo)).to_have_text(["Bar printer: out of paper", "Pass printer: offline"])
    expect(banner(board)).to_have_text(["Bar printer: out of paper", "Pass printer: offline"])
    expect(banner(grill)).to_have_text(["Pass printer: offline"])
    german = pages.open("/screen/bar?lang=de")
    expect(banner(german)).to_have_text(["Drucker Bar: kein Papier", "Drucker Pass: offline"])

    # Refilled: the bar's line goes (the next probe finds it), the pass's stays.
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "online"}) is not None
    expect(banner(bar)).to_have_text(["Pass printer: offline"])


def test_a_failed_print_says_print_failed_and_the_cashier_sees_kitchen_words(
    api: Api, pages: Pages, bar_printer: dict[str, Any]
) -> None:
    # The bar printer is off: its items go `failed`. The bar screen and the expo say the *print*
    # failed; the cashier board says where the order is in the kitchen, never FAILED or SEEN.
    # The bar's own screen opens once the print failed: an open station acknowledges a new ticket
    # (`sent -> delivered`), and when that receipt lands first the item stays `delivered`
    # (test_screens_printer_retry::test_a_ticket_the_station_shows_stays_new_when_its_print_fails).
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "offline"}) is not None
    expo = pages.open("/expo")
    board = pages.open("/board")
    made = api.post_order(order("f", item(1, "Cheeseburger"), item(2, "Pilsner", group="Drinks")))
    wait_for(lambda: api.item_status(made["id"], 2, "bar") == "failed", what="the bar item failed")
    bar = pages.open("/screen/bar")
    card = bar.locator(f"article.card[data-id='{made['id']}']")
    expect(card.locator(".state")).to_have_text(
        "print failed", use_inner_text=True, ignore_case=True
    )  # what shows: the LATE tag is hidden until late
    expect(
        expo.locator(f"article.card[data-id='{made['id']}'] .chip[data-endpoint='bar']")
    ).to_have_text("bar print failed")
    row = board.locator(f".row[data-id='{made['id']}']")
    expect(row.locator(".chip[data-endpoint='bar']")).to_have_text("bar In kitchen")
    expect(row.locator(".overall")).to_have_text("In kitchen")

    api.set_endpoint_status(made["id"], "grill", "delivered")
    api.set_endpoint_status(made["id"], "grill", "accepted")
    expect(row.locator(".chip[data-endpoint='grill']")).to_have_text("grill Cooking")
    api.set_endpoint_status(made["id"], "grill", "processed")
    expect(row.locator(".chip[data-endpoint='grill']")).to_have_text("grill Ready")
    for word in ("FAILED", "SEEN", "SENT", "failed", "seen", "sent"):
        assert word not in row.inner_text()


def test_screenshot_of_the_printer_banner(
    api: Api, pages: Pages, bar_printer: dict[str, Any]
) -> None:
    # The README's picture of printer trouble: the bar out of paper, the pass printer unplugged,
    # a take-away customer's name and a recalled ticket, the clock stopped so every run matches.
    from datetime import datetime, timedelta

    from .conftest import SCREENSHOTS
    from .test_screens_screenshots import freeze

    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "paper_out"}) is not None
    made = [
        api.post_order(
            order(
                "b1", item(1, "Pilsner", group="Drinks", qty=2), item(2, "Lemonade", group="Drinks")
            )
        ),
        api.post_order(
            order(
                "b2",
                item(1, "Espresso", group="Drinks"),
                item(2, "Tiramisu", group="Desserts"),
                ticket={
                    "name": "Pickup",
                    "purchaseType": "takeAway",
                    "customer": {"name": "Eva Nováková"},
                },
            )
        ),
        api.post_order(order("b3", item(1, "Mojito", group="Drinks", modifiers=["no sugar"]))),
    ]
    wait_for(
        lambda: api.item_status(made[2]["id"], 1, "bar") == "failed",
        timeout=10,
        what="the bar prints failed",
    )
    for status in ("sent", "delivered", "processed"):
        api.request(
            "POST", f"/api/v1/orders/{made[2]['id']}/endpoints/bar/status", {"status": status}
        )
    api.request(
        "POST",
        f"/api/v1/orders/{made[2]['id']}/endpoints/bar/status",
        {"status": "accepted", "recall": True},
    )
    oldest = min(datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00")) for o in made)
    bar = pages.open("/screen/bar", clock=True)
    freeze(bar, oldest + timedelta(minutes=2, seconds=5, milliseconds=500))
    expect(banner(bar)).to_have_text(["Bar printer: out of paper", "Pass printer: offline"])
    expect(bar.locator("article.card .recalled")).to_have_count(1)
    expect(bar.locator("article.card .customer")).to_have_text("Eva Nováková")
    bar.evaluate(
        "window.kds.sound.enabled = false; window.kds.sound._changed()"
    )  # no sound prompt in the picture
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    bar.screenshot(path=str(SCREENSHOTS / "printer-alert.png"))
    assert (SCREENSHOTS / "printer-alert.png").stat().st_size > 10_000
