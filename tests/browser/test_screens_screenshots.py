"""Screenshots of the views for the README, taken from a live daemon with a lunch rush."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .conftest import SCREENSHOTS, Api, Pages, expect, item, order, wait_for


def lunch(api: Api) -> list[dict[str, Any]]:
    """A plausible set of open orders: tables, take-away, delivery, courses, notes."""
    bodies = [
        order(
            "s1",
            item(
                1,
                "Cheeseburger",
                qty=2,
                modifiers=["no onion", "extra cheese"],
                comment="medium rare",
                courseNumber=1,
            ),
            item(2, "Fries", qty=2, courseNumber=1),
            item(3, "Pilsner", group="Drinks", qty=2),
            user="Anna",
        ),
        order(
            "s2",
            item(1, "Caesar salad", courseNumber=1),
            item(
                2,
                "Ribeye steak",
                modifiers=["pepper sauce"],
                comment="allergy: nuts!",
                courseNumber=2,
            ),
            item(3, "Grilled vegetables", courseNumber=2),
            user="Marek",
            ticket={
                "name": "T12",
                "location": {"zoneName": "Terrace", "tableName": "12"},
                "purchaseType": "walkIn",
            },
        ),
        order(
            "s3",
            item(1, "Chicken wings", qty=6),
            item(2, "Lemonade", group="Drinks"),
            user="Anna",
            ticket={"name": "Pickup", "purchaseType": "takeAway"},
        ),
        order(
            "s4",
            item(1, "Veggie burger", modifiers=["gluten-free bun"]),
            item(2, "Sweet potato fries"),
            user="Web shop",
            deviceName="Online",
            ticket={"name": "Wolt 4471", "purchaseType": "delivery"},
        ),
        order(
            "s5",
            item(1, "Schnitzel", comment="well done"),
            item(2, "Potato salad"),
            user="Marek",
            ticket={
                "name": "T3",
                "location": {"zoneName": "Hall", "tableName": "3"},
                "purchaseType": "walkIn",
            },
        ),
        order(
            "s6",
            item(1, "Cheeseburger"),
            item(2, "Espresso", group="Drinks"),
            user="Jana",
            ticket={
                "name": "T7",
                "location": {"zoneName": "Hall", "tableName": "7"},
                "purchaseType": "walkIn",
            },
        ),
    ]
    return [api.post_order(body) for body in bodies]


def freeze(page: Any, at: datetime) -> None:
    """Stop the context's clock at `at`, connected.

    The jump there may fire the feed's silence watchdog (a fake clock leaps; a real one does
    not); a second of fake time lets the screen reconnect before time stands still.
    """
    page.clock.pause_at(at - timedelta(seconds=1))
    page.clock.run_for(1000)
    expect(page.locator("body[data-connected=yes]")).to_be_attached()
    expect(page.locator("#banner")).to_be_hidden()


def test_screenshots_of_station_board_expo_pickup(api: Api, pages: Pages) -> None:
    # The README's pictures: each view is checked to show the rush before it is captured.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    made = lunch(api)
    for o in made:
        wait_for(
            lambda o=o: (
                api.order(o["id"])["endpointStatuses"].get("grill") in ("sent", "delivered")
            ),
            what="routed",
        )
    for endpoint in ("grill", "bar"):
        api.set_endpoint_status(made[0]["id"], endpoint, "delivered")
        api.set_endpoint_status(made[0]["id"], endpoint, "accepted")
    api.set_endpoint_status(made[5]["id"], "bar", "delivered")
    api.set_endpoint_status(made[5]["id"], "bar", "processed")
    api.set_endpoint_status(made[2]["id"], "grill", "delivered")
    api.set_endpoint_status(made[2]["id"], "grill", "processed")
    api.set_endpoint_status(made[2]["id"], "bar", "delivered")
    api.set_endpoint_status(made[2]["id"], "bar", "processed")

    # The context's clock is driven so every run draws the same pictures.
    oldest = min(datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00")) for o in made)
    board = pages.open("/board", clock=True)
    freeze(board, oldest + timedelta(seconds=42, milliseconds=500))
    expect(board.locator(".row")).to_have_count(6)
    expect(board.locator(".row.ready")).to_have_count(1)
    board.screenshot(path=str(SCREENSHOTS / "board.png"))

    expo = pages.open("/expo")
    expect(expo.locator("article.card")).to_have_count(5)
    expo.evaluate("window.kds.sound.enabled = false; window.kds.sound._changed()")
    expect(expo.locator("#banner")).to_be_hidden()
    expo.screenshot(path=str(SCREENSHOTS / "expo.png"))

    pickup = pages.open("/pickup")
    expect(pickup.locator(".ready-list .number")).to_have_count(1)
    expect(pickup.locator(".preparing-list .number")).to_have_count(5)
    expect(pickup.locator("#banner")).to_be_hidden()
    pickup.screenshot(path=str(SCREENSHOTS / "pickup.png"))

    # Last, 6:10 after the first order: the station with its tickets amber.
    grill = pages.open("/screen/grill")
    expect(grill.locator("article.card")).to_have_count(5)
    freeze(grill, oldest + timedelta(minutes=6, seconds=10, milliseconds=500))
    expect(grill.locator("article.card.t-warn")).to_have_count(5)
    expect(grill.locator("article.card .timer").first).to_have_text("6:10")
    grill.evaluate(
        "window.kds.sound.enabled = false; window.kds.sound._changed()"
    )  # no sound prompt in the picture
    grill.screenshot(path=str(SCREENSHOTS / "station.png"))

    for name in ("station", "board", "expo", "pickup"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
