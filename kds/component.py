"""The lifecycle protocol every long-lived part of kds implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Component(Protocol):
    """Something `kds.app` starts in dependency order and stops in reverse."""

    name: str

    async def start(self) -> None:
        """Acquire resources and spawn background work; return when serving."""

    async def stop(self) -> None:
        """Finish or cancel background work and release resources."""

    def health(self) -> dict[str, Any]:
        """`{"ok": bool, ...}` for /readyz and /metrics."""
