"""POS text is shown as text on every view; the pages carry a strict CSP."""

from __future__ import annotations

import urllib.request

from tests.util import KdsProcess

from .conftest import Api, Pages, expect, item, order

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"


def test_markup_in_pos_text_is_shown_as_text_and_never_runs(api: Api, pages: Pages) -> None:
    # Item name, comment, modifier, user and table carry markup; every view shows it literally.
    hostile = order(
        "x",
        item(1, IMG, comment=SCRIPT, modifiers=[IMG]),
        user=SCRIPT,
        ticket={"name": IMG, "location": {"tableName": IMG}, "purchaseType": "walkIn"},
    )
    a = api.post_order(hostile)
    for path in ("/screen/grill", "/expo", "/board", "/pickup"):
        page = pages.open(path)
        if path != "/pickup":
            target = page.locator(f"[data-id='{a['id']}']")
            expect(target).to_contain_text(IMG)
        if path in ("/screen/grill", "/expo"):
            expect(target.locator(".item .name")).to_have_text(IMG)
            expect(target.locator(".comment")).to_have_text(SCRIPT)
            expect(target.locator(".mod")).to_have_text(IMG)
        expect(page.locator(f"[data-id='{a['id']}']")).to_have_count(1)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("#view img").count() == 0, path
        assert page.locator("#view script").count() == 0, path
        # The station's all-day panel and the recall list show product names too.
        if path == "/screen/grill":
            expect(page.locator(".allday-list li .ad-name")).to_have_text([IMG])
    assert not pages.errors


def test_pages_send_a_strict_content_security_policy(kds: KdsProcess) -> None:
    # No inline script or style may run, connections only to this daemon, no framing.
    for path in ("/screen/grill", "/expo", "/board", "/pickup", "/"):
        with urllib.request.urlopen(kds.url + path) as response:
            csp = response.headers["Content-Security-Policy"]
            assert response.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "connect-src 'self';" in csp and "ws:" not in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
