"""Browser fixtures: Debian's Chromium driven by Playwright, against `kds run` in a subprocess.

The daemon runs as a real process on 127.0.0.1 so a test can stop and restart it
under an open screen. Every page is watched for uncaught script errors; a test
fails if one happens.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.util import KdsProcess, base_config, write_config

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # What a browser does by default on a real screen: no sound before a tap.
    "--autoplay-policy=document-user-activation-required",
    # Several screens share one browser here; each is a kiosk's foreground page in real life.
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

expect.set_options(timeout=5000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


#: How much of the daemon's log and of the browser's console a failed test shows.
LOG_TAIL = 8000
LOG_LINES = 100


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test shows what the pages and the daemon saw: the browser's console, the
    daemon's log tail, /readyz and the printers.

    Taken right after the test body failed, while the daemon still runs, so a flaky
    failure in CI carries the evidence of its cause.
    """
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    fixtures = getattr(item, "funcargs", {})
    opened = fixtures.get("pages")
    if isinstance(opened, Pages) and opened.console:
        report.sections.append(("browser console", "\n".join(opened.console[-LOG_LINES:])))
    process = fixtures.get("kds")
    if not isinstance(process, KdsProcess):
        return
    for path in ("/readyz", "/api/v1/printers"):
        report.sections.append((f"kds {path}", _fetch_text(process.url + path)))
    log = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
    report.sections.append((f"kds log (last {LOG_TAIL} characters)", log[-LOG_TAIL:]))


def _fetch_text(url: str) -> str:
    """`url`'s body as text, or why there is none (the daemon may be the thing that broke)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return f"{err.code}: {err.read().decode(errors='replace')}"
    except OSError as err:
        return f"no answer: {err!r}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module (Playwright's own download is not reachable here).

    Not per session: while Playwright's sync API is alive it holds the thread's event loop,
    and the async tests of other modules need it back.
    """
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Api:
    """The orders API of a running kds, over plain HTTP like a POS would call it."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path} -> {err.code}: {err.read()[:500]!r}") from None

    def post_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/orders", body)

    def order(self, order_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/orders/{order_id}")

    def status_at(self, order_id: str, endpoint: str) -> str:
        return self.order(order_id)["endpointStatuses"][endpoint]

    def item_status(self, order_id: str, item_id: int, endpoint: str) -> str:
        order = self.order(order_id)
        item = next(i for i in order["items"] if i["id"] == item_id)
        return next(e for e in item["endpoints"] if e["name"] == endpoint)["status"]

    def set_endpoint_status(self, order_id: str, endpoint: str, status: str) -> dict[str, Any]:
        return self.request(
            "POST", f"/api/v1/orders/{order_id}/endpoints/{endpoint}/status", {"status": status}
        )


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll the daemon's API until `predicate()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (AssertionError, KeyError, StopIteration) as err:
            last = err
        else:
            if last:
                return last
        threading.Event().wait(0.02)  # poll interval; the wait is bounded by `timeout`
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


@pytest.fixture
def kds_config(tmp_path: Path) -> dict[str, Any]:
    """The restaurant of the browser tests: grill, cold and bar screens; tests may tweak it."""
    config = base_config(tmp_path)
    # The log a failed test shows (see pytest_runtest_makereport): printer states are info lines.
    config["logging"]["level"] = "info"
    config["ui"] = {"lang": "en", "pickup_ready_time": "2m", "recall_window": "10m", "sound": True}
    # The tests' orders are mostly table orders: let the pickup board show every purchase type.
    config["ui"]["pickup_types"] = ["walkIn", "takeAway", "delivery", "unknown"]
    return config


@pytest.fixture
def kds(tmp_path: Path, kds_config: dict[str, Any]) -> Iterator[KdsProcess]:
    """`kds run` on a free port of 127.0.0.1, stopped after the test."""
    path = write_config(tmp_path / "config.toml", kds_config)
    process = KdsProcess(path, tmp_path / "kds.sqlite3", log_path=tmp_path / "kds.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def api(kds: KdsProcess) -> Api:
    return Api(kds.url)


class Pages:
    """Opens screens of one kds in one browser context and records script errors."""

    def __init__(self, context: Any, base: str) -> None:
        self.context = context
        self.base = base
        self.errors: list[str] = []
        self.console: list[str] = []  # every page's console and failed requests, for a failed test

    def open(self, path: str, *, clock: bool = False) -> Any:
        page = self.context.new_page()
        page.on("pageerror", lambda err: self.errors.append(f"{path}: {err}"))
        page.on("console", lambda msg: self.console.append(f"{path} {msg.type}: {msg.text}"))
        page.on(
            "requestfailed",
            lambda req: self.console.append(
                f"{path} request failed: {req.method} {req.url} {req.failure}"
            ),
        )
        # Anything the page's CSP blocks is a bug in the screens (inline code or style, foreign hosts).
        page.on(
            "console",
            lambda msg: (
                "Content Security Policy" in msg.text and self.errors.append(f"{path}: {msg.text}")
            ),
        )
        if clock:
            page.clock.install()
        page.goto(self.base + path)
        expect(page.locator("body[data-connected=yes][data-synced=yes]")).to_be_attached()
        return page


def block_sound(page: Any) -> None:
    """Put `page` in the browser's no-sound-before-a-tap state, as a kiosk starts.

    Playwright runs its calls in the page as user gestures (`userGesture: true`), and
    Chromium creates an AudioContext already running once the page had one: when a call
    (the `pages.open` wait) lands before the screen made its context, sound starts allowed.
    """
    page.evaluate(
        "async () => { const c = window.kds.sound.context; if (c.state === 'running') await c.suspend(); }"
    )


#: The two screen sizes layout tests run at (`@pytest.mark.parametrize("viewport", VIEWPORTS)`).
VIEWPORTS = [(1920, 1080), (1280, 800)]


@pytest.fixture
def viewport() -> tuple[int, int]:
    """The browser window size of `pages`; parametrize it to run a test at several sizes."""
    return (1280, 800)


@pytest.fixture
def pages(browser: Any, kds: KdsProcess, viewport: tuple[int, int]) -> Iterator[Pages]:
    """A fresh browser context; fails the test on any uncaught script error in its pages."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    opened = Pages(context, kds.url)
    yield opened
    context.close()
    assert not opened.errors, f"script errors: {opened.errors}"


def order(external_id: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An order body for the native API."""
    body: dict[str, Any] = {
        "id": external_id,
        "deviceName": "POS1",
        "user": "Anna",
        "ticket": {
            "name": f"T-{external_id}",
            "location": {"zoneName": "Terrace", "tableName": "5"},
            "purchaseType": "walkIn",
        },
        "items": list(items),
    }
    body.update(fields)
    return body


def item(
    item_id: int, name: str, *, group: str | None = None, qty: float = 1, **fields: Any
) -> dict[str, Any]:
    """An order item; `group="Drinks"` routes it to the bar."""
    plu: dict[str, Any] = {"name": name, "code": 100 + item_id}
    if group:
        plu["group"] = group
    return {"id": item_id, "plu": plu, "quantity": qty, **fields}
