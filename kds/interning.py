"""One copy of what repeats across orders: product names, units, menus.

Thousands of live orders share a menu of dozens of products, so the view keeps
one `Plu` per product and one interned string per repeated text. Used where
orders are built (ingest) and where they are read back (the store's loader).
Shared objects are never mutated.
"""

from __future__ import annotations

import functools
import sys
from decimal import Decimal
from typing import Any, overload

from .model import Plu, Quantity, trusted


@overload
def shared(text: str) -> str: ...
@overload
def shared(text: None) -> None: ...
@overload
def shared(text: str | None) -> str | None: ...
def shared(text: str | None) -> str | None:
    """One copy of text that repeats across orders (product names, modifiers, endpoints)."""
    if text is None or len(text) > 64:
        return text
    return sys.intern(text)


@functools.lru_cache(maxsize=4096)
def shared_plu(name: str, code: int | str | None, stock_name: str | None, group: str | None) -> Plu:
    """One Plu object per product: thousands of orders share a menu of dozens (never mutated)."""
    return trusted(
        Plu, name=shared(name), code=code, stock_name=shared(stock_name), group=shared(group)
    )


@functools.lru_cache(maxsize=1024)
def shared_quantity(amount: str, unit: str) -> Quantity:
    """One Quantity object per (amount, unit) — mostly "1 pcs" (never mutated)."""
    return trusted(Quantity, amount=Decimal(amount), unit=shared(unit))


#: Users by their items (most POS users are one of a few staff names); bounded like the caches above.
_USERS: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
_USERS_MAX = 4096


def shared_user(user: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """One copy of an order's `user` (text, or a small dict of text) per distinct value (never mutated)."""
    if user is None or isinstance(user, str):
        return shared(user)
    if len(user) > 8 or not all(isinstance(v, str | int | None) for v in user.values()):
        return user
    key = tuple(user.items())
    found = _USERS.get(key)
    if found is None:
        found = {shared(k): shared(v) if isinstance(v, str) else v for k, v in user.items()}
        if len(_USERS) < _USERS_MAX:
            _USERS[key] = found
    return found
