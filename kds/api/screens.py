"""The kitchen screens: the page shell for every view and the static files under `/static/`.

One HTML shell serves `/screen/{endpoint}`, `/expo`, `/board`, `/pickup` and `/`;
the ES modules pick the view from the URL. Pages carry a strict
Content-Security-Policy (no inline scripts or styles, connections only to this
origin), so even a POS text that slipped into markup could not run. Static
files are read from `web/` only, by extension, never outside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

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
            raise web.HTTPServiceUnavailable(text="the screens are not installed (web/index.html missing)") from None
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)

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
        if not _SAFE_STATIC.fullmatch(name):  # a NUL made pathlib raise (a 500); no file has odd bytes
            raise web.HTTPNotFound(text="no such file")
        path = (self.root / name).resolve()
        content_type = STATIC_TYPES.get(path.suffix)
        # resolve() follows links, so a link pointing out of web/ fails the containment check.
        if content_type is None or not path.is_relative_to(self.root) or not path.is_file():
            raise web.HTTPNotFound(text="no such file")
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return web.FileResponse(path, headers=headers)


def screen_routes(web_root: Path) -> list[web.RouteDef]:
    """The routes of the screens, serving files from `web_root`."""
    files = ScreenFiles(web_root)
    return [
        web.get("/", files.handle_page),
        web.get("/screen/{endpoint}", files.handle_station),
        web.get("/expo", files.handle_page),
        web.get("/board", files.handle_page),
        web.get("/pickup", files.handle_page),
        web.get("/static/{path:.+}", files.handle_static),
    ]


def setup_screens(app: web.Application, web_root: Path) -> None:
    """Serve the screens from `web_root` on `app`."""
    app.add_routes(screen_routes(web_root))
