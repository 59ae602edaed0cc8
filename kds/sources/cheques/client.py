"""Talking to the cheques API: one URL, the operation in the `INTENT_OPERATION_TYPE` header.

Every call is `{method} {url}` with a JSON body (seed 003); with a `pin`, the
`AUTH` intent answers the token sent as `Auth-token` afterwards, fetched again
when the API rejects it. HTTP failures are answered as for every POS
(`kds.sources.http`); a non-200 `resultCode` is a `ChequesUnavailable`.
"""

from __future__ import annotations

import json
from typing import Any

from ..base import SourceUnavailable
from ..coerce import text
from ..http import PosClient
from .config import Config
from .translate import ChequesUnavailable, cheque_entries

#: resultCodes that mean "log in again".
AUTH_FAILURES = frozenset({401, 403, 498, 499})


class ChequesClient(PosClient):
    """Reads the open cheques, logging in with the PIN when one is configured."""

    pos = "cheques API"

    def __init__(self, config: Config) -> None:
        super().__init__(timeout=config.request_timeout)
        self.config = config
        self._token: str | None = (
            config.auth_token.get_secret_value() if config.auth_token else None
        )

    async def call(self, intent: str, body: dict[str, Any]) -> Any:
        """One API call: the answer's JSON."""
        headers = {
            "INTENT_OPERATION_TYPE": intent,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if self._token and intent != "AUTH":
            headers["Auth-token"] = self._token
        answer = await self.send(
            self.config.method, self.config.url, data=json.dumps(body).encode(), headers=headers
        )
        return self.read(answer, f"{intent} {self.config.url}")

    async def _authenticate(self) -> None:
        assert self.config.pin is not None
        data = await self.call("AUTH", {"pin": self.config.pin.get_secret_value()})
        token = None
        if isinstance(data, dict):
            if data.get("resultCode") not in (200, "200", None):
                raise ChequesUnavailable(
                    data.get("resultCode"), text(data.get("messageDetail")) or "AUTH refused"
                )
            token = next(
                (
                    data[k]
                    for k in ("token", "authToken", "Auth-token", "auth_token")
                    if data.get(k)
                ),
                None,
            )
            if token is None and isinstance(data.get("data"), dict):
                token = data["data"].get("token")
        if not token:
            raise SourceUnavailable("cheques API AUTH answer carries no token")
        self._token = str(token)

    async def fetch(self) -> list[Any]:
        """Every open cheque, raw (authenticating first / again when a PIN is configured)."""
        if self.config.pin is not None and self._token is None:
            await self._authenticate()
        try:
            return cheque_entries(await self.call("GET_CHEQUES", {"uuids": []}))
        except ChequesUnavailable as err:
            if err.code in AUTH_FAILURES and self.config.pin is not None:
                await self._authenticate()
                return cheque_entries(await self.call("GET_CHEQUES", {"uuids": []}))
            raise
