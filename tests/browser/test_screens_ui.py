"""Languages, the new-ticket sound and its autoplay unlock, the screen menu."""

from __future__ import annotations

import pytest

from .conftest import Api, Pages, block_sound, expect, item, order

LABELS = {
    "en": ("Bump", "Refuse", "Recall", "All day"),
    "sk": ("Hotovo", "Odmietnuť", "Vrátiť", "Celkom"),
    "de": ("Fertig", "Ablehnen", "Zurückholen", "Gesamt"),
    "ru": ("Готово", "Отказать", "Вернуть", "Всего"),
}


@pytest.mark.parametrize("lang", sorted(LABELS))
def test_lang_query_chooses_the_labels(lang: str, api: Api, pages: Pages) -> None:
    # ?lang= picks en, sk, de or ru; POS text stays as the POS sent it.
    api.post_order(order("l", item(1, "Guláš")))
    grill = pages.open(f"/screen/grill?lang={lang}")
    bump, refuse, recall, all_day = LABELS[lang]
    expect(grill.locator("html")).to_have_attribute("lang", lang)
    expect(grill.locator("article.card button.bump")).to_have_text(bump)
    expect(grill.locator("article.card button.refuse")).to_have_text(refuse)
    expect(grill.locator("button.recall-open")).to_have_text(recall)
    expect(grill.locator(".allday h2")).to_have_text(all_day)
    expect(grill.locator("article.card .item .name")).to_have_text("Guláš")


def test_new_ticket_sound_with_one_tap_unlock_and_toggle(api: Api, pages: Pages) -> None:
    # Until a tap, the browser blocks audio and the screen offers "enable sound";
    # once enabled, a new ticket chimes; the toggle silences it and is remembered.
    grill = pages.open("/screen/grill")
    grill.bring_to_front()
    enable = grill.locator("button.enable-sound")
    block_sound(grill)  # Playwright's own calls count as taps (see block_sound)
    expect(enable).to_be_visible()
    assert grill.evaluate("window.kds.sound.context.state") == "suspended"
    enable.click()
    expect(enable).to_be_hidden()
    assert grill.evaluate("window.kds.sound.context.state") == "running"

    api.post_order(order("s1", item(1, "Steak")))
    expect(grill.locator("body[data-chimes='1']")).to_be_attached()

    grill.locator("button.sound-toggle").click()
    expect(grill.locator("button.sound-toggle")).to_have_attribute("aria-pressed", "false")
    second = api.post_order(order("s2", item(1, "Ribs")))
    expect(grill.locator(f"article.card[data-id='{second['id']}']")).to_be_visible()
    expect(grill.locator("body[data-chimes='1']")).to_be_attached()

    grill.reload()
    expect(grill.locator("button.sound-toggle")).to_have_attribute("aria-pressed", "false")
    expect(grill.locator("button.enable-sound")).to_be_hidden()


def test_menu_and_unknown_station_link_to_the_screens(pages: Pages) -> None:
    # / lists the screens; a mistyped station says so and offers the real ones.
    menu = pages.open("/")
    expect(menu.locator(".menu a")).to_have_text(
        ["Station: grill", "Station: cold", "Station: bar", "Expo", "Orders", "Pickup"]
    )
    wrong = pages.open("/screen/gril")
    expect(wrong.locator(".toolbar .title")).to_have_text("Unknown station: gril")
    wrong.locator(".menu a", has_text="Station: grill").click()
    expect(wrong.locator(".toolbar .title")).to_have_text("Station: grill")
