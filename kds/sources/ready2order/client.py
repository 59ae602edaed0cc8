"""Talking to the ready2order API: Bearer account token, 60 requests a minute, paged lists.

Every request takes a token from the account's bucket (`kds.sources.ratelimit`)
first; a 429 empties and blocks the bucket for `Retry-After` and the request
is repeated. Other failures are answered as for every POS (`kds.sources.http`).
"""

from __future__ import annotations

from typing import Any

import structlog

from ..base import SourceUnavailable
from ..http import PosClient
from ..ratelimit import TokenBucket, parse_retry_after
from .config import Config

log = structlog.get_logger(__name__)

MAX_PAGES = 200


class Ready2OrderClient(PosClient):
    """Bearer-authenticated, rate-limited calls to the ready2order API."""

    pos = "ready2order"

    def __init__(self, config: Config, bucket: TokenBucket) -> None:
        super().__init__(timeout=config.request_timeout)
        self.config = config
        self.bucket = bucket

    async def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        attempts: int = 4,
        background: bool = False,
    ) -> Any:
        """GET `path` as JSON; waits for the bucket (`background`: after order fetches), honours 429."""
        url = f"{self.config.base_url}{path}"
        headers = {"Authorization": f"Bearer {self.config.token()}", "Accept": "application/json"}
        for _ in range(attempts):
            await self.bucket.acquire(background=background)
            answer = await self.send("GET", url, params=params, headers=headers)
            if answer.status == 429:
                wait = self.bucket.penalize(parse_retry_after(answer.headers.get("Retry-After")))
                log.warning("ready2order.throttled", path=path, retry_after=wait)
                continue
            self.bucket.succeeded()
            return self.read(answer, f"GET {path}")
        raise SourceUnavailable(f"ready2order kept answering 429 for {path}")

    async def get_pages(
        self, path: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> list[dict[str, Any]]:
        """Every row of a paged list (`page`, `limit`)."""
        rows: list[dict[str, Any]] = []
        limit = self.config.page_size
        for page in range(1, MAX_PAGES + 1):
            data = await self.get(
                path, {**(params or {}), "page": page, "limit": limit}, background=background
            )
            if isinstance(data, dict):  # some lists come wrapped
                data = next((v for v in data.values() if isinstance(v, list)), [])
            if not isinstance(data, list):
                raise SourceUnavailable(
                    f"ready2order sent a {type(data).__name__} for {path}, expected a list"
                )
            rows.extend(r for r in data if isinstance(r, dict))
            if len(data) < limit:
                break
        return rows
