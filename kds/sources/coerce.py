"""Reading untrusted POS JSON: text, numbers, booleans and times, never an exception.

A POS sends what it sends — numbers as strings ("3,5"), ids as digit strings,
booleans as 1 or "true", text with surrounding blanks or far too long. Every
source reads fields through these helpers, so one field kds cannot read is a
None (the caller decides the default), never a crash or a lost order.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..model import MAX_TEXT

#: The spellings of "yes" POS flags use (`order_retour`, `trainingMode`, ...).
_TRUE = frozenset({"1", "true"})


def text(value: Any, *, strip: bool = True, limit: int = MAX_TEXT) -> str | None:
    """POS text as plain text cut to `limit`; None when missing, an object or a list, or blank.

    `strip=False` keeps the text as sent (blanks included; a blank text is kept).
    Overlong text is cut: never a reason to lose an order.
    """
    if value is None:
        return None
    if not strip:
        return str(value)[:limit]
    if isinstance(value, (dict, list)):
        return None
    return str(value).strip()[:limit] or None


def as_int(value: Any) -> int | None:
    """An integer id from an int or a digit string; None otherwise (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if isinstance(value, str) and (digits := value.strip()).isascii() and digits.isdigit():
        return int(digits)
    return None


def as_decimal(value: Any) -> Decimal | None:
    """A money or quantity ("5", "60.5", "3,5", 2) as Decimal; None when it is not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def as_bool(value: Any) -> bool:
    """True for true, 1, "1" and "true" (any case); everything else is False."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in _TRUE


def as_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time ("Z" allowed); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def three_places(value: Decimal) -> Decimal:
    """At most three decimals, as the canonical Quantity allows."""
    exponent = value.as_tuple().exponent
    return (
        value.quantize(Decimal("0.001")) if isinstance(exponent, int) and exponent < -3 else value
    )
