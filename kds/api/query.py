"""`GET /api/v1/orders` query parameters in the PORTOS dialect (seed 002).

Filters (`deviceName, id, number, ticketId, ticketName, userUserName,
isProcessed, isProcessable, source, externalId, endpoint, status`) are combined
with AND; a comma-separated value matches any of its parts (OR). Paging is
`$skip`/`$take`, `$sort` a comma-separated list of keys with `:asc`/`:desc` or a
leading `-` (case-insensitive), and `$count=true` answers the count alone.
With `endpoint`, `status`, `isProcessed` and `isProcessable` apply to the
order's items at that endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest
from ..model import Order, OrderStatus
from ..states import FINAL, PROCESSABLE

MAX_TAKE = 1000
DEFAULT_TAKE = 100

_STATUS_NAMES = {s.value.lower(): s for s in OrderStatus}


def _user_name(order: Order) -> str | None:
    user = order.user
    if isinstance(user, dict):
        return user.get("userName") or user.get("name")
    return user


#: Sort keys (lower-cased) → value of an order.
SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "number": lambda o: o.number,
    "posnumber": lambda o: o.pos_number if o.pos_number is not None else -1,
    "devicename": lambda o: o.device_name or "",
    "ticketid": lambda o: o.ticket.id or "",
    "ticketname": lambda o: o.ticket.name or "",
    "source": lambda o: o.source,
    "externalid": lambda o: o.external_id,
    "createdat": lambda o: o.created_at,
    "updatedat": lambda o: o.updated_at,
    "status": lambda o: o.status_at().value,
}

_TEXT_FILTERS: dict[str, Callable[[Order], str | None]] = {
    "deviceName": lambda o: o.device_name,
    "id": lambda o: o.id,
    "ticketId": lambda o: o.ticket.id,
    "ticketName": lambda o: o.ticket.name,
    "userUserName": _user_name,
    "source": lambda o: o.source,
    "externalId": lambda o: o.external_id,
}
_KNOWN = set(_TEXT_FILTERS) | {"number", "posNumber", "isProcessed", "isProcessable", "endpoint", "status", "$skip", "$take", "$sort", "$count"}


@dataclass
class OrderQuery:
    """A parsed, validated orders query."""

    predicates: list[Callable[[Order], bool]] = field(default_factory=list)
    skip: int = 0
    take: int = DEFAULT_TAKE
    sort: list[tuple[Callable[[Order], Any], bool]] = field(default_factory=list)
    count_only: bool = False

    def run(self, orders: Iterable[Order]) -> str:
        """Apply to `orders`; the JSON of a QueryResult `{items, count, totalCount}`."""
        matched = [o for o in orders if all(p(o) for p in self.predicates)]
        for key, descending in reversed(self.sort):  # stable sorts, last key first
            matched.sort(key=key, reverse=descending)
        if self.count_only:
            return json.dumps({"count": len(matched), "totalCount": len(matched)})
        page = matched[self.skip : self.skip + self.take]
        items = ",".join(o.wire_json(keep=False) for o in page)  # reused where already encoded
        return f'{{"items":[{items}],"count":{len(page)},"totalCount":{len(matched)}}}'


def _values(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false, got {raw!r}")


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


def _status(raw: str) -> OrderStatus:
    status = _STATUS_NAMES.get(raw.strip().lower())
    if status is None:
        raise BadRequest(f"unknown status {raw!r}; known: {', '.join(s.value for s in OrderStatus)}")
    return status


def parse_order_query(params: Mapping[str, str]) -> OrderQuery:
    """Validate query parameters; BadRequest names the bad one."""
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; known: {', '.join(sorted(_KNOWN))}")
    query = OrderQuery()
    for name, getter in _TEXT_FILTERS.items():
        if name in params:
            wanted = set(_values(params[name]))
            query.predicates.append(lambda o, g=getter, w=wanted: g(o) in w)
    if "number" in params:
        numbers = {parse_int("number", v) for v in _values(params["number"])}
        query.predicates.append(lambda o: o.number in numbers)
    if "posNumber" in params:
        pos_numbers = {parse_int("posNumber", v) for v in _values(params["posNumber"])}
        query.predicates.append(lambda o: o.pos_number in pos_numbers)
    endpoint = params.get("endpoint")
    if endpoint is not None:
        query.predicates.append(lambda o: endpoint in o.endpoint_names())
    if "status" in params:
        statuses = {_status(v) for v in _values(params["status"])}
        query.predicates.append(lambda o: o.status_at(endpoint) in statuses)
    if "isProcessed" in params:
        # Processed: every item endpoint (at `endpoint`) is final.
        wanted_processed = _bool("isProcessed", params["isProcessed"])
        query.predicates.append(
            lambda o: all(e.status in FINAL for e in o.item_endpoints(endpoint)) == wanted_processed
        )
    if "isProcessable" in params:
        wanted_processable = _bool("isProcessable", params["isProcessable"])
        query.predicates.append(
            lambda o: any(e.status in PROCESSABLE for e in o.item_endpoints(endpoint)) == wanted_processable
        )
    if "$skip" in params:
        query.skip = parse_int("$skip", params["$skip"])
    if "$take" in params:
        query.take = parse_int("$take", params["$take"], high=MAX_TAKE)
    if "$count" in params:
        query.count_only = _bool("$count", params["$count"])
    if "$sort" in params:
        query.sort = [_sort_key(part) for part in _values(params["$sort"])]
    return query


def _sort_key(part: str) -> tuple[Callable[[Order], Any], bool]:
    descending = part.startswith("-")
    name = part.lstrip("-+")
    if ":" in name:
        name, direction = name.split(":", 1)
        if direction.lower() not in ("asc", "desc"):
            raise BadRequest(f"$sort direction must be asc or desc, got {direction!r}")
        descending = direction.lower() == "desc"
    key = SORT_KEYS.get(name.strip().lower())
    if key is None:
        raise BadRequest(f"cannot sort by {name!r}; keys: {', '.join(sorted(SORT_KEYS))}")
    return key, descending
