"""The kitchen screens: the page shell for every view, the static files under `/static/`,
and the settings the screens read at load (`/api/v1/ui`).

One HTML shell serves `/screen/{endpoint}`, `/expo`, `/board`, `/pickup` and `/`;
the ES modules pick the view from the URL. Every number a screen uses (windows, timer
thresholds) comes from the config through `/api/v1/ui` and `/api/v1/endpoints`: the
JavaScript keeps no defaults of its own. Pages carry a strict
Content-Security-Policy (no inline scripts or styles, connections only to this
origin), so even a POS text that slipped into markup could not run. Static
files are read from `web/` only, by extension, never outside it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from ..appkeys import SETTINGS
from ..config import EndpointConfig, Settings, TimersConfig
from ..errors import KdsError

#: connect-src 'self' covers this origin's own ws:/wss: (CSP 3); "ws: wss:" allowed any host.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)

PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Kiosks must pick up a new build without anyone clearing a cache.
    "Cache-Control": "no-cache",
}

STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

#: What a file name under web/ may contain: no control characters, spaces or backslashes.
_SAFE_STATIC = re.compile(r"[A-Za-z0-9._/-]{1,200}")
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SHELL = "index.html"


class ScreenFiles:
    """Serves the shell and the static files of one web root."""

    def __init__(self, web_root: Path) -> None:
        self.root = Path(web_root).resolve()

    def _shell(self) -> web.Response:
        try:
            body = (self.root / SHELL).read_bytes()
        except FileNotFoundError:
            raise web.HTTPServiceUnavailable(
                text="the screens are not installed (web/index.html missing)"
            ) from None
        return web.Response(
            body=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    async def handle_page(self, request: web.Request) -> web.Response:
        """A view page: the same shell, the view comes from the URL."""
        return self._shell()

    async def handle_station(self, request: web.Request) -> web.Response:
        """`/screen/{endpoint}`; unknown stations get the shell, which lists the real ones."""
        if not ENDPOINT_NAME.match(request.match_info["endpoint"]):
            raise web.HTTPNotFound(text="no such station")
        return self._shell()

    async def handle_static(self, request: web.Request) -> web.FileResponse:
        """A file under web/ with a known type; nothing outside web/, no directory listings."""
        name = request.match_info["path"]
        if not _SAFE_STATIC.fullmatch(
            name
        ):  # a NUL made pathlib raise (a 500); no file has odd bytes
            raise web.HTTPNotFound(text="no such file")
        path = (self.root / name).resolve()
        content_type = STATIC_TYPES.get(path.suffix)
        # resolve() follows links, so a link pointing out of web/ fails the containment check.
        if content_type is None or not path.is_relative_to(self.root) or not path.is_file():
            raise web.HTTPNotFound(text="no such file")
        headers = {
            "Content-Type": content_type,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        return web.FileResponse(path, headers=headers)


def screen_timers(timers: TimersConfig) -> dict[str, Any]:
    """An endpoint's elapsed-time thresholds as the screens read them (seconds)."""
    return {
        "warnAfter": timers.warn_after,
        "lateAfter": timers.late_after,
        "lateFlash": timers.late_flash,
        "lateSound": timers.late_sound,
    }


def expo_timers(endpoints: Sequence[EndpointConfig]) -> dict[str, float]:
    """The expo colours an order by the most patient station's thresholds (config has ≥ 1)."""
    return {
        "warnAfter": max(e.timers.warn_after for e in endpoints),
        "lateAfter": max(e.timers.late_after for e in endpoints),
    }


def ui_settings(settings: Settings) -> dict[str, Any]:
    """What every screen reads at load, besides the endpoints."""
    ui = settings.ui
    return {
        "lang": ui.lang,
        "pickupReadySeconds": ui.pickup_ready_time,
        "recallWindowSeconds": ui.recall_window,
        "soundDefault": ui.sound,
        "pickupTypes": [t.value for t in ui.pickup_types],
        "expoTimers": expo_timers(settings.endpoints),
    }


async def _handle_ui(request: web.Request) -> web.Response:
    """Settings the screens read at load."""
    return web.json_response(ui_settings(request.app[SETTINGS]))


def wants_page(request: web.Request) -> bool:
    """True for a browser opening a page (it asks for HTML), not for an API call."""
    accept = request.headers.get("Accept", "")
    return (
        request.method in ("GET", "HEAD")
        and not request.path.startswith(("/api/", "/hooks/"))
        and "text/html" in accept
        and not accept.lstrip().startswith("application/json")
    )


def not_paired_page(request: web.Request, err: KdsError) -> web.Response:
    """The 401/403 of a screen as a page that tells the person in front of it how to pair it."""
    from .auth import required_roles

    roles = sorted((required_roles(request) or frozenset({"viewer"})) - {"admin"}) or ["admin"]
    role = roles[0]
    screen = request.path.strip("/").replace("/", "-") or "menu"
    pair = f"http://{request.host}/pair?token=TOKEN&next={request.path_qs}"
    title = (
        "This screen is not paired yet"
        if err.status == 401
        else "This screen's token may not open this page"
    )
    body = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="dark">
  <title>kds — {html.escape(title)}</title>
  <link rel="stylesheet" href="/static/css/kds.css">
</head>
<body>
<main class="pairing-help">
  <h1>{html.escape(title)}</h1>
  <p>kds shows orders only to screens it knows. Pair this screen once with a <b>{html.escape(role)}</b> token:</p>
  <ol>
    <li>On the kds machine run <code>kds token --role {html.escape(role)} --name {html.escape(screen)}</code>,
      add the lines it prints to <code>config.toml</code> and restart kds.</li>
    <li>On this screen open <code>{html.escape(pair)}</code> with the token it printed.</li>
  </ol>
  <p class="pairing-detail">{html.escape(err.detail)}</p>
</main>
</body>
</html>
"""
    return web.Response(
        text=body, status=err.status, content_type="text/html", headers=PAGE_HEADERS
    )


def screen_routes(web_root: Path) -> list[web.RouteDef]:
    """The routes of the screens, serving files from `web_root`."""
    files = ScreenFiles(web_root)
    return [
        web.get("/", files.handle_page),
        web.get("/screen/{endpoint}", files.handle_station),
        web.get("/expo", files.handle_page),
        web.get("/board", files.handle_page),
        web.get("/pickup", files.handle_page),
        web.get("/reports", files.handle_page),
        web.get("/static/{path:.+}", files.handle_static),
        web.get("/api/v1/ui", _handle_ui),
    ]


def setup_screens(app: web.Application, web_root: Path) -> None:
    """Serve the screens from `web_root` on `app`."""
    app.add_routes(screen_routes(web_root))
