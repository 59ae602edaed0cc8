"""Durations in config.toml: `"250ms"`, `"1s"`, `"5m"`, `"24h"`, `"7d"` or seconds.

A leaf module (no kds imports) so every config model — the sources' own too —
can use `Duration` without importing `kds.config`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """`"250ms"`, `"1s"`, `"5m"`, `"24h"`, `"7d"` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '5m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(
        f"expected a duration like '500ms', '1s', '5m', '24h' or seconds, got {value!r}"
    )


Duration = Annotated[float, BeforeValidator(parse_duration)]


def format_duration(seconds: float) -> str:
    """300 → "5m", 90 → "90s", 0.25 → "250ms": durations as config.toml writes them."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"
