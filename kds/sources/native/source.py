"""The native source: orders posted to kds's own `POST /api/v1/orders`.

The route itself lives with the rest of the HTTP API (kds.api.orders); this
module exists so `[[sources]] type = "native"` validates like any other source
and the daemon can report it.
"""

from __future__ import annotations

from typing import Any

from ..base import SourceContext
from .config import Config

WRITES_BACK = False


class NativeSource:
    """Nothing to poll: the HTTP API is the source."""

    def __init__(self, config: Config) -> None:
        self.name = f"source:{config.name}"

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def health(self) -> dict[str, Any]:
        return {"ok": True}


def create(config: Config, ctx: SourceContext) -> NativeSource:
    """The native source component."""
    return NativeSource(config)
