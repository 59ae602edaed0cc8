"""Pages of other sites in a browser on the kds box (issue 13, item 5), in real Chromium.

In the default `access = "loopback"` mode a browser on the kds box is trusted.
Chromium maps evil.example to 127.0.0.1 (`--host-resolver-rules`), the shape of
a DNS-rebinding attack: a page of evil.example on kds's port is same-origin
with kds, and a page of evil.example on another port is a cross-site page that
may send no-cors requests. Neither may read orders or change anything.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Api, Pages, item, order, playwright_sync
from tests.util import KdsProcess

ATTACK_PAGE = "<!doctype html><html><body><p>nothing to see</p></body></html>"


@pytest.fixture(scope="module")
def rebinding_browser() -> Iterator[Any]:
    """Chromium that resolves evil.example to 127.0.0.1."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS,
                "--host-resolver-rules=MAP evil.example 127.0.0.1",
                # Newer Chromium asks before a public page reaches a local address (Local/Private Network
                # Access). Kiosk browsers and other engines may not: kds must hold without that help.
                "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,"
                "PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def evil_site() -> Iterator[int]:
    """A plain web server on 127.0.0.1 serving the attacker's page; yields its port."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ATTACK_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


FETCH_ALL = """async ([orderId, body]) => {
  const attempt = async (path, init) => {
    try {
      const response = await fetch(path, init);
      return `${response.status} ${(await response.text()).slice(0, 80)}`;
    } catch (err) {
      return `error ${err}`;
    }
  };
  const json = { "Content-Type": "application/json" };
  return {
    list: await attempt("/api/v1/orders"),
    board: await attempt("/board"),
    order: await attempt(`/api/v1/orders/${orderId}`),
    metrics: await attempt("/metrics"),
    create: await attempt("/api/v1/orders", { method: "POST", headers: json, body }),
    bump: await attempt(`/api/v1/orders/${orderId}/status`, { method: "POST", headers: json, body: '{"status": "processed"}' }),
    remove: await attempt(`/api/v1/orders/${orderId}`, { method: "DELETE" }),
  };
}"""


def test_a_rebinding_name_cannot_read_or_change_anything(
    rebinding_browser: Any, kds: KdsProcess, api: Api
) -> None:
    # evil.example:PORT resolves to kds: the page is same-origin with every kds route. It loaded
    # /board, listed orders and deleted them. Now every answer to that name is a 403.
    created = api.post_order(order("rebind-1", item(1, "Burger")))
    context = rebinding_browser.new_context()
    page = context.new_page()
    evil = f"http://evil.example:{kds.port}"
    page.route(
        f"{evil}/attack",
        lambda route: route.fulfill(status=200, content_type="text/html", body=ATTACK_PAGE),
    )
    page.goto(f"{evil}/attack")
    results = page.evaluate(
        FETCH_ALL, [created["id"], '{"id": "evil", "items": [{"plu": {"name": "x"}}]}']
    )
    context.close()
    assert all(r.startswith("403 ") for r in results.values()), results
    assert api.order(created["id"]) == created
    assert api.request("GET", "/api/v1/orders")["totalCount"] == 1


def test_another_sites_page_cannot_post_orders_or_delete(
    rebinding_browser: Any, kds: KdsProcess, api: Api, evil_site: int
) -> None:
    # A page of another site sent `fetch(kds, {mode: "no-cors", Content-Type: text/plain})`: no
    # preflight, and the order was stored (201). A DELETE needs a preflight kds never grants.
    created = api.post_order(order("cross-1", item(1, "Burger")))
    context = rebinding_browser.new_context()
    page = context.new_page()
    page.goto(f"http://evil.example:{evil_site}/")
    outcome = page.evaluate(
        """async ([base, orderId]) => {
          const body = JSON.stringify({ id: "no-cors", items: [{ plu: { name: "Injected" } }] });
          const sent = [];
          for (const path of ["/api/v1/orders", `/api/v1/orders/${orderId}/status`]) {
            const payload = path.endsWith("status") ? '{"status": "processed"}' : body;
            try {
              const r = await fetch(base + path, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: payload });
              sent.push(r.type);
            } catch (err) { sent.push(`error ${err}`); }
          }
          try {
            await fetch(`${base}/api/v1/orders/${orderId}`, { method: "DELETE" });
            sent.push("deleted?");
          } catch (err) { sent.push("delete refused"); }
          return sent;
        }""",
        [kds.url, created["id"]],
    )
    context.close()
    assert outcome[:2] == ["opaque", "opaque"], outcome  # the requests did leave the browser
    listing = api.request("GET", "/api/v1/orders")
    assert listing["totalCount"] == 1, [o["externalId"] for o in listing["items"]]
    assert api.order(created["id"]) == created


def test_the_screens_still_connect_under_connect_src_self(
    rebinding_browser: Any, kds: KdsProcess, api: Api
) -> None:
    # CSP connect-src 'self' (no longer any ws: host) still lets a screen open its own websocket.
    context = rebinding_browser.new_context()
    pages = Pages(context, kds.url)
    page = pages.open(
        "/board"
    )  # waits for data-connected=yes and a synced feed; CSP errors are recorded
    created = api.post_order(order("csp-1", item(1, "Burger")))
    page.wait_for_function(
        "n => document.body.textContent.includes(String(n))", arg=created["number"]
    )
    context.close()
    assert not pages.errors, pages.errors
