"""Accessibility of every screen, checked by axe-core in Chromium with a restaurant in full swing.

axe-core comes from npm (`tests/run.sh` installs it under tests/browser/node_modules) and is
loaded from that local file into each page before the page's own scripts run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.util import free_port

from .conftest import Api, Pages, expect, item, order, wait_for

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = [{"width": 1920, "height": 1080}, {"width": 1280, "height": 800}]

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help}\\n` +
      v.nodes.slice(0, 6).map((n) => `    ${n.target.join(" ")}: ${(n.failureSummary || "").replace(/\\n/g, " ")}`).join("\\n") +
      (v.nodes.length > 6 ? `\\n    … ${v.nodes.length - 6} more` : ""));
}"""


@pytest.fixture
def kds_config(kds_config: dict[str, Any]) -> dict[str, Any]:
    # A printer-only "pass" endpoint whose printer is switched off (nothing listens there).
    kds_config["endpoints"].append(
        {
            "name": "pass",
            "display": False,
            "printer": {"address": f"127.0.0.1:{free_port()}", "connect_timeout": 0.5},
        }
    )
    kds_config["routing"]["rules"].append({"product_group": "Desserts", "endpoint": "pass"})
    return kds_config


def axe_violations(page: Any) -> list[str]:
    """The serious and critical axe violations on `page`, one readable string each."""
    return page.evaluate(RUN_AXE)


def rush(api: Api) -> dict[str, dict[str, Any]]:
    """Orders in every state a screen shows: table, take-away, delivery, cancelled, refused, ready, recalled."""
    made = {
        "table": api.post_order(
            order(
                "t",
                item(1, "Cheeseburger", modifiers=["no onion"], comment="allergy: nuts"),
                item(2, "Pilsner", group="Drinks"),
                item(3, "Tiramisu", group="Desserts"),
            )
        ),
        "takeaway": api.post_order(
            order(
                "ta",
                item(1, "Chicken wings", qty=6),
                ticket={
                    "name": "Pickup",
                    "purchaseType": "takeAway",
                    "customer": {"name": "Eva Nováková"},
                },
            )
        ),
        "delivery": api.post_order(
            order(
                "d",
                item(1, "Veggie burger"),
                item(2, "Lemonade", group="Drinks"),
                ticket={"name": "Wolt 4471", "purchaseType": "delivery", "customer": "Jan Kováč"},
            )
        ),
        "cancelled": api.post_order(order("c", item(1, "Schnitzel"))),
        "refused": api.post_order(order("r", item(1, "Ribeye steak"))),
        "ready": api.post_order(order("done", item(1, "Fries"))),
        "recalled": api.post_order(order("re", item(1, "Burger"))),
    }
    for o in made.values():
        wait_for(
            lambda o=o: api.status_at(o["id"], "grill") in ("sent", "delivered"), what="routed"
        )
        api.set_endpoint_status(o["id"], "grill", "delivered")
    api.set_endpoint_status(made["table"]["id"], "grill", "accepted")
    api.request(
        "POST",
        f"/api/v1/orders/{made['refused']['id']}/endpoints/grill/status",
        {"status": "refused", "reason": "Out of stock"},
    )
    api.set_endpoint_status(made["ready"]["id"], "grill", "processed")
    api.set_endpoint_status(made["recalled"]["id"], "grill", "processed")
    api.request(
        "POST",
        f"/api/v1/orders/{made['recalled']['id']}/endpoints/grill/status",
        {"status": "accepted", "recall": True},
    )
    api.request("DELETE", f"/api/v1/orders/{made['cancelled']['id']}")
    return made


@pytest.fixture
def axe_pages(browser: Any, kds: Any, request: pytest.FixtureRequest) -> Any:
    """Pages with axe-core loaded before their scripts, at the viewport of the test."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE}): run tests/run.sh, or "
            "npm install --prefix tests/browser --no-save axe-core@4"
        )
    context = browser.new_context(viewport=request.param)
    context.add_init_script(path=str(AXE))
    opened = Pages(context, kds.url)
    yield opened
    context.close()
    assert not opened.errors, f"script errors: {opened.errors}"


SCREENS = [
    ("/screen/grill", "Grill — kds station"),
    ("/screen/bar", "Bar — kds station"),
    ("/screen/cold", "Cold — kds station"),
    ("/expo", "Expo — kds"),
    ("/board", "Orders — kds"),
    ("/pickup", "Pickup — kds"),
    ("/", "Screens — kds"),
    ("/screen/nosuch", "Unknown station — kds"),
]


@pytest.mark.parametrize("axe_pages", VIEWPORTS, indirect=True, ids=["1920x1080", "1280x800"])
def test_every_screen_has_no_serious_axe_violations_and_a_title(api: Api, axe_pages: Pages) -> None:
    # With every kind of order and a dead printer on screen, axe finds nothing serious or
    # critical on any page, and each page's title names the screen (and the station).
    rush(api)
    report = []
    for path, title in SCREENS:
        page = axe_pages.open(path)
        if path.startswith("/screen/grill"):
            expect(page.locator("article.card")).to_have_count(5)  # 4 open + the voided one
        if path in ("/screen/grill", "/expo", "/board"):
            expect(page.locator(".printer-banner")).to_contain_text("Pass printer: offline")
        expect(page).to_have_title(title)
        report += [f"{path}: {v}" for v in axe_violations(page)]
        page.close()
    assert not report, "\n".join(report)


def grill_at_the_tables_refuse(api: Api, pages: Pages) -> tuple[Any, dict[str, Any], Any]:
    """The grill screen over `rush`'s orders, the table order and its card's refuse button."""
    table = rush(api)["table"]
    grill = pages.open("/screen/grill")
    grill.bring_to_front()
    return grill, table, grill.locator(f"article.card[data-id='{table['id']}'] button.refuse")


def refuse_dialog(grill: Any, table: dict[str, Any]) -> Any:
    return grill.get_by_role("dialog", name=f"Refuse order #{table['number']}")


@pytest.mark.parametrize("axe_pages", VIEWPORTS[1:], indirect=True, ids=["1280x800"])
def test_refuse_and_recall_dialogs_are_named_take_focus_and_give_it_back(
    api: Api, axe_pages: Pages
) -> None:
    # The refuse dialog is a modal <dialog> named by its heading; focus moves into it,
    # axe is happy with it open, and Escape gives focus back to the button that opened it.
    grill, table, refuse = grill_at_the_tables_refuse(api, axe_pages)
    refuse.focus()
    refuse.press("Tab")  # a real key press, then back: focus is where a keyboard user left it
    refuse.focus()
    refuse.click()
    dialog = refuse_dialog(grill, table)
    expect(dialog).to_be_visible()
    assert grill.evaluate("document.activeElement.closest('dialog[open]') !== null")
    assert axe_violations(grill) == []
    grill.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert grill.evaluate("document.activeElement.classList.contains('refuse')")

    grill.locator("button.recall-open").click()
    recall = grill.get_by_role("dialog", name="Recall a bumped order")
    expect(recall).to_be_visible()
    assert axe_violations(grill) == []
    grill.keyboard.press("Escape")
    expect(recall).to_be_hidden()


@pytest.mark.parametrize("axe_pages", VIEWPORTS[1:], indirect=True, ids=["1280x800"])
def test_a_focused_button_keeps_focus_when_the_board_is_laid_out_again(
    api: Api, axe_pages: Pages
) -> None:
    # A keyboard user is on a card's refuse button when a new order arrives and the board is laid
    # out again: focus stays on that button (not lost to the page body), with or without the
    # refuse dialog open at that moment.
    grill, table, refuse = grill_at_the_tables_refuse(api, axe_pages)
    refuse.focus()
    expect(refuse).to_be_focused()
    body = grill.locator("body")
    shown = int(body.get_attribute("data-open") or 0)
    api.post_order(order("late1", item(1, "Steak")))
    expect(body).to_have_attribute("data-open", str(shown + 1))  # laid out with it
    expect(refuse).to_be_focused()

    refuse.click()
    dialog = refuse_dialog(grill, table)
    expect(dialog).to_be_visible()
    api.post_order(order("late2", item(1, "Steak")))
    expect(body).to_have_attribute("data-open", str(shown + 2))
    grill.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(refuse).to_be_focused()


def test_a_late_ticket_says_late_in_words_on_station_and_expo(api: Api, pages: Pages) -> None:
    # Lateness is not told by colour alone: past late_after the card says LATE, on the station
    # and on the expo.
    made = api.post_order(order("l", item(1, "Steak")))
    for path in ("/screen/grill", "/expo"):
        page = pages.open(path, clock=True)
        card = page.locator(f"article.card[data-id='{made['id']}']")
        expect(card).to_be_visible()
        expect(card.locator(".late-tag")).to_be_hidden()
        page.clock.run_for(11 * 60 * 1000)
        expect(card).to_have_class(re.compile(r"\bt-late\b"))
        expect(card.locator(".late-tag")).to_be_visible()
        expect(card.locator(".late-tag")).to_have_text("LATE")


class TestPairingPages:
    """The pages the daemon renders itself (not-paired help, re-pairing confirmation) pass axe too."""

    @pytest.fixture
    def kds_config(self, kds_config: dict[str, Any]) -> dict[str, Any]:
        from kds.api.auth import hash_token

        kds_config["security"] = {
            "access": "tokens",
            "tokens": [
                {"name": "grill-screen", "role": "kitchen", "sha256": hash_token("kitchen-token")},
                {"name": "bar-screen", "role": "kitchen", "sha256": hash_token("bar-token")},
            ],
        }
        return kds_config

    @pytest.mark.parametrize("axe_pages", VIEWPORTS[1:], indirect=True, ids=["1280x800"])
    def test_not_paired_and_confirm_pages_have_no_serious_axe_violations(
        self, axe_pages: Pages
    ) -> None:
        page = axe_pages.context.new_page()
        response = page.goto(f"{axe_pages.base}/screen/grill")
        assert response is not None and response.status == 401
        expect(page.locator(".pairing-help")).to_be_visible()
        report = [f"not paired: {v}" for v in axe_violations(page)]
        page.goto(f"{axe_pages.base}/pair?token=kitchen-token&next=/screen/grill")
        expect(page.locator("body[data-synced=yes]")).to_be_attached()
        page.goto(f"{axe_pages.base}/pair?token=bar-token&next=/screen/bar")
        expect(page.locator("form")).to_be_visible()
        report += [f"confirm: {v}" for v in axe_violations(page)]
        assert not report, "\n".join(report)
