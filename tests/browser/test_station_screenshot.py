"""The README's picture of a busy cook screen: a long ticket continued, late tickets, Undo."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from .conftest import SCREENSHOTS, Api, Pages, expect, item, order, wait_for
from .test_screens_screenshots import freeze


@pytest.mark.parametrize("viewport", [(1920, 1080)])
def test_screenshot_of_long_late_and_undo(
    api: Api, pages: Pages, viewport: tuple[int, int]
) -> None:
    # Eleven minutes into a rush (the grill is late after ten): every header red with LATE,
    # a 25-line party order continued in the next column, and the Undo offer of a bump.
    made = [
        api.post_order(
            order(
                "p1",
                item(1, "Cheeseburger", qty=2, modifiers=["no onion"]),
                item(2, "Fries", qty=2),
            )
        ),
        api.post_order(
            order(
                "p2",
                *[
                    item(
                        n,
                        f"Party platter {n}",
                        modifiers=["no nuts"] if n % 6 == 0 else [],
                        comment="allergy: gluten" if n == 9 else None,
                    )
                    for n in range(1, 26)
                ],
                ticket={
                    "name": "Party",
                    "location": {"zoneName": "Hall", "tableName": "20"},
                    "purchaseType": "walkIn",
                },
            )
        ),
        api.post_order(
            order("p3", item(1, "Ribeye steak", comment="medium"), item(2, "Grilled vegetables"))
        ),
        api.post_order(
            order(
                "p4",
                item(1, "Chicken wings", qty=6),
                ticket={"name": "Pickup", "purchaseType": "takeAway"},
            )
        ),
    ]
    for o in made:
        wait_for(
            lambda o=o: (
                api.order(o["id"])["endpointStatuses"].get("grill") in ("sent", "delivered")
            ),
            what="routed",
        )
    oldest = min(datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00")) for o in made)
    grill = pages.open("/screen/grill", clock=True)
    expect(grill.locator("body[data-open='4']")).to_be_attached()
    freeze(grill, oldest + timedelta(minutes=11, seconds=5, milliseconds=500))
    grill.evaluate("window.kds.sound.enabled = false; window.kds.sound._changed()")
    wait_for(lambda: api.status_at(made[0]["id"], "grill") == "delivered", what="acknowledged")
    grill.keyboard.press("1")
    grill.keyboard.press("Enter")
    wait_for(lambda: api.status_at(made[0]["id"], "grill") == "processed", what="bumped")
    expect(grill.locator(".undo-bar")).to_be_visible()
    expect(grill.locator("article.card")).to_have_count(3)
    expect(grill.locator("article.card.t-late")).to_have_count(3)
    expect(grill.locator(f"[data-cont-of='{made[1]['id']}']")).to_have_count(1)
    grill.screenshot(path=str(SCREENSHOTS / "station-rush.png"))
    assert (SCREENSHOTS / "station-rush.png").stat().st_size > 10_000
