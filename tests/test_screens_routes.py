"""The screen routes: page shell with a strict CSP, static files from web/ only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from kds.api.screens import PAGE_CSP, setup_screens
from kds.app import Daemon
from kds.config import settings_from_dict

from .util import base_config


async def test_every_view_serves_the_shell_with_security_headers(client: Any) -> None:
    # Each view is the same module-loading shell; none allows inline code or framing.
    for path in ("/", "/screen/grill", "/screen/no-such-station", "/expo", "/board", "/pickup"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == "text/html"
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        body = await response.text()
        assert '<script type="module" src="/static/js/main.js"></script>' in body
        assert "<script>" not in body and "style=" not in body and "<style" not in body


async def test_csp_is_strict() -> None:
    # The policy the brief fixes, with nothing that would let inline code in.
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self';",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ):
        assert directive in PAGE_CSP
    assert "unsafe" not in PAGE_CSP and "ws:" not in PAGE_CSP


async def test_static_files_have_their_types_and_stay_inside_web(client: Any) -> None:
    # Modules and styles are served with the right types; nothing outside web/ is reachable.
    js = await client.get("/static/js/main.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    assert js.headers["Cache-Control"] == "no-cache"
    css = await client.get("/static/css/kds.css")
    assert css.status == 200 and css.content_type == "text/css"
    for path in (
        "/static/../kds/app.py",
        "/static/%2e%2e/kds/app.py",
        "/static/js/../../pyproject.toml",
        "/static/js/",
        "/static/js/nope.js",
        "/static/index.html",
    ):
        response = await client.get(path)
        assert response.status == 404, path


async def test_bad_station_names_are_not_found(client: Any) -> None:
    response = await client.get("/screen/" + "x" * 65)
    assert response.status == 404


async def test_missing_web_root_answers_503(aiohttp_client: Any, tmp_path: Path) -> None:
    # A package without web/ says what is wrong instead of a bare 500.
    app = web.Application()
    setup_screens(app, tmp_path / "web")
    client = await aiohttp_client(app)
    response = await client.get("/board")
    assert response.status == 503


async def test_symlink_out_of_web_root_is_refused(aiohttp_client: Any, tmp_path: Path) -> None:
    # A link inside web/ that points outside it is not followed.
    root = tmp_path / "web"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html>")
    secret = tmp_path / "secret.js"
    secret.write_text("secret")
    (root / "js" / "leak.js").symlink_to(secret)
    (root / "js" / "ok.js").write_text("export {};")
    app = web.Application()
    setup_screens(app, root)
    client = await aiohttp_client(app)
    assert (await client.get("/static/js/ok.js")).status == 200
    assert (await client.get("/static/js/leak.js")).status == 404


async def test_ui_settings_carry_every_number_the_screens_use(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # The screens keep no defaults of their own: windows, sound, pickup types and the expo's
    # timer thresholds (the most patient station's) all come from the config, via /api/v1/ui.
    config = base_config(tmp_path)
    config["endpoints"][1]["timers"] = {"warn_after": "7m", "late_after": "12m"}
    config["endpoints"][2]["timers"] = {"warn_after": "8m", "late_after": "9m"}
    config["ui"] = {"pickup_ready_time": "3m", "recall_window": "5m", "sound": False}
    client = await aiohttp_client(Daemon(settings_from_dict(config)).app)
    response = await client.get("/api/v1/ui")
    assert response.status == 200
    assert await response.json() == {
        "lang": "en",
        "pickupReadySeconds": 180,
        "recallWindowSeconds": 300,
        "soundDefault": False,
        "pickupTypes": ["takeAway", "delivery"],
        "expoTimers": {"warnAfter": 480, "lateAfter": 720},
    }
