"""The live connection: disconnected banner, reconnect with backoff, resume without loss or duplicates."""

from __future__ import annotations

from typing import Any

from tests.util import KdsProcess

from .conftest import Api, Pages, expect, item, order


def ids_on(page: Any) -> list[str]:
    return page.eval_on_selector_all("article.card", "els => els.map(e => e.dataset.id)")


def assert_each_once(page: Any, expected: list[dict[str, Any]]) -> None:
    for o in expected:
        expect(page.locator(f"article.card[data-id='{o['id']}']")).to_have_count(1)
    expect(page.locator("article.card")).to_have_count(len(expected))
    shown = ids_on(page)
    assert sorted(shown) == sorted(o["id"] for o in expected), shown


def test_restart_shows_banner_then_resumes_with_orders_from_the_outage(
    kds: KdsProcess, api: Api, pages: Pages
) -> None:
    # Stopping the daemon shows the banner within 2 s; orders posted while the screen
    # was cut off appear exactly once after it reconnects, without a reload.
    grill = pages.open("/screen/grill")
    board = pages.open("/board")
    a = api.post_order(order("a", item(1, "Cheeseburger")))
    expect(grill.locator(f"article.card[data-id='{a['id']}']")).to_be_visible()
    grill.evaluate("window.__sameDocument = true")
    banner = grill.locator("#banner")
    expect(banner).to_be_hidden()

    kds.stop()
    expect(banner).to_be_visible(timeout=2000)
    expect(banner).to_have_text("Disconnected — reconnecting…")
    expect(board.locator("#banner")).to_be_visible(timeout=2000)

    # Keep the screens away while the daemon is back and takes orders.
    pages.context.set_offline(True)
    kds.start()
    b = api.post_order(order("b", item(1, "Steak")))
    c = api.post_order(order("c", item(1, "Schnitzel")))
    api.set_endpoint_status(a["id"], "grill", "processed")
    d = api.post_order(order("d", item(1, "Burger")))
    pages.context.set_offline(False)

    expect(banner).to_be_hidden(timeout=10_000)
    assert_each_once(grill, [b, c, d])
    expect(board.locator(".row")).to_have_count(4)  # a stays as ready for the pickup time
    assert grill.evaluate("window.__sameDocument") is True  # resumed, not reloaded

    # A plain restart: the screen finds the daemon again by itself (backoff), no online event.
    kds.stop()
    expect(banner).to_be_visible(timeout=2000)
    kds.start()
    expect(banner).to_be_hidden(timeout=10_000)
    e = api.post_order(order("e", item(1, "Ribs")))
    assert_each_once(grill, [b, c, d, e])
    assert grill.evaluate("window.__sameDocument") is True


def test_short_drop_replays_missed_events_by_sequence(api: Api, pages: Pages) -> None:
    # A screen that loses its connection briefly resumes with `since` and gets exactly
    # the events it missed: new orders once, bumped ones gone.
    grill = pages.open("/screen/grill")
    a = api.post_order(order("a", item(1, "Cheeseburger")))
    b = api.post_order(order("b", item(1, "Steak")))
    assert_each_once(grill, [a, b])
    seq_before = grill.evaluate("window.kds.feed.seq")

    pages.context.set_offline(True)
    expect(grill.locator("#banner")).to_be_visible(timeout=2000)
    c = api.post_order(order("c", item(1, "Schnitzel")))
    api.set_endpoint_status(b["id"], "grill", "processed")
    pages.context.set_offline(False)

    expect(grill.locator("#banner")).to_be_hidden(timeout=10_000)
    assert_each_once(grill, [a, c])
    assert grill.evaluate("window.kds.feed.seq") > seq_before


def test_silent_link_shows_banner_once_the_server_pings_stop(api: Api, pages: Pages) -> None:
    # A pulled cable closes nothing. Once the daemon is known to send application pings,
    # two seconds without any traffic count as disconnected; the screen then reconnects.
    grill = pages.context.new_page()
    grill.on("pageerror", lambda err: pages.errors.append(str(err)))
    links: list[dict[str, Any]] = []
    network = {"up": True}

    def relay(route: Any) -> None:
        if not network["up"]:
            route.close(code=1006, reason="unreachable")
            return
        link = {"route": route, "alive": True}
        server = route.connect_to_server()
        server.on_message(lambda message: link["alive"] and route.send(message))
        route.on_message(lambda message: server.send(message))
        links.append(link)

    grill.route_web_socket("**/api/v1/ws**", relay)
    grill.goto(pages.base + "/screen/grill")
    expect(grill.locator("body[data-connected=yes][data-synced=yes]")).to_be_attached()
    a = api.post_order(order("a", item(1, "Cheeseburger")))
    expect(grill.locator(f"article.card[data-id='{a['id']}']")).to_be_visible()

    links[-1]["route"].send('{"type":"ping"}')
    network["up"] = False
    links[-1]["alive"] = False  # the link goes dead without closing
    expect(grill.locator("#banner")).to_be_visible(timeout=3000)
    network["up"] = True
    expect(grill.locator("#banner")).to_be_hidden(
        timeout=10_000
    )  # a fresh connection through a live link
    b = api.post_order(order("b", item(1, "Steak")))
    assert_each_once(grill, [a, b])
