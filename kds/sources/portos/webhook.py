"""PORTOS webhooks (optional): a signed `POST /hooks/portos/{name}` makes the source poll at once.

PORTOS signs each webhook with `X-PORTOS-WEBHOOK-SIGNATURE`, the HMAC-SHA256 of
the JSON body with the webhook secret configured in its back office. The body
itself is not used: the poll stays the source of truth, the webhook only brings
its latency below the poll interval.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import structlog
from aiohttp import web

from ...errors import Unauthorized
from .config import Config

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-PORTOS-WEBHOOK-SIGNATURE"


def signature_ok(secret: str, body: bytes, given: str) -> bool:
    """Whether `given` is the body's HMAC-SHA256 (hex or base64: PORTOS does not say which)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return bool(given) and (
        hmac.compare_digest(given.lower(), digest.hex())
        or hmac.compare_digest(given, base64.b64encode(digest).decode())
    )


class PortosWebhook:
    """The webhook route of one PORTOS source."""

    def __init__(self, config: Config, poll_now: Callable[[], None]) -> None:
        assert config.webhook_secret is not None
        self._config = config
        self._secret = config.webhook_secret.get_secret_value()
        self._poll_now = poll_now
        self.received = 0

    @property
    def path(self) -> str:
        """Where PORTOS delivers webhooks for this source (configure it in PORTOS's back office)."""
        return f"/hooks/portos/{self._config.name}"

    def routes(self) -> list[web.RouteDef]:
        """The route to add to the daemon's web app."""
        return [web.post(self.path, self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        """A signed PORTOS webhook: poll now (202); a bad signature is a 401."""
        body = await request.read()
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not signature_ok(self._secret, body, given):
            log.warning("portos.webhook_rejected", source=self._config.name, reason="bad signature")
            raise Unauthorized("bad webhook signature")
        self.received += 1
        self._poll_now()
        return web.json_response({"status": "accepted"}, status=202)
