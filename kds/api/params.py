"""Integers in paths and query values, read strictly (every route that takes one)."""

from __future__ import annotations

import re

from ..errors import BadRequest

_ASCII_INT = re.compile(r"-?[0-9]{1,19}")


def parse_int(name: str, raw: str, *, low: int = 0, high: int = 10**9) -> int:
    """An integer from a path or query value: ASCII digits and an optional minus only.

    `str.isdigit()` and `int()` accept "²", "٣", "１", "1_000" and " 1 ";
    none of them is an integer on our wire. BadRequest names `name`.
    """
    if not _ASCII_INT.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer (ASCII digits), got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value
