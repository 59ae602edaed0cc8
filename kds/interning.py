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
from typing import Any, NoReturn, overload

from .model import Location, Plu, PurchaseType, Quantity, TicketInfo, from_fields, trusted


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


@functools.lru_cache(maxsize=4096)
def shared_location(zone_name: str | None, table_name: str | None) -> Location:
    """One Location per (zone, table): a restaurant's orders are at a few dozen (never mutated)."""
    return trusted(Location, zone_name=shared(zone_name), table_name=shared(table_name))


def shared_ticket(
    ticket_id: str | None,
    name: str | None,
    location: Location | None,
    purchase_type: PurchaseType,
    customer: dict[str, Any] | None,
    version: int | None,
) -> TicketInfo:
    """A stored order's TicketInfo, built alike for new and loaded orders: its table's one
    `shared_location`, its name shared, no set of field names of its own (unvalidated)."""
    return from_fields(
        TicketInfo,
        {
            "id": ticket_id,
            "name": shared(name),
            "location": location,
            "purchase_type": purchase_type,
            "customer": customer,
            "version": version,
        },
    )


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError("a shared empty value is never changed in place: assign a new one")


class _SharedEmptyList(list[Any]):
    """The empty list orders read back share where they hold nothing (allergens, modifiers,
    events, holds). kds replaces such lists instead of changing them; this one refuses."""

    __slots__ = ()
    append = extend = insert = remove = pop = clear = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class _SharedEmptyDict(dict[Any, Any]):
    """The empty dict orders read back share where they hold nothing (allergen acks)."""

    __slots__ = ()
    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __ior__ = _refuse


#: One empty list and one empty dict for every loaded order that holds nothing there: ~400
#: bytes an order (three items' allergens, events, holds, acks) not kept 10,000 times.
EMPTY_LIST: list[Any] = _SharedEmptyList()
EMPTY_DICT: dict[Any, Any] = _SharedEmptyDict()


#: Users by their items (most POS users are one of a few staff names); bounded like the caches above.
_USERS: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
_USERS_MAX = 4096


def shared_user(user: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """One copy of an order's `user` (text, or a small dict of text) per distinct value (never mutated)."""
    if user is None or isinstance(user, str):
        return shared(user)
    key = tuple(user.items())
    try:
        found = _USERS.get(key)  # looked up first: a known user needs no checks
    except TypeError:  # a value that is a list or a dict: kept as it is
        return user
    if found is None:
        if len(user) > 8 or not all(isinstance(v, str | int | None) for v in user.values()):
            return user
        found = {shared(k): shared(v) if isinstance(v, str) else v for k, v in user.items()}
        if len(_USERS) < _USERS_MAX:
            _USERS[key] = found
    return found
