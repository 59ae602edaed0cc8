"""`GET /api/v1/orders` query parameters in the PORTOS dialect: NData (seed 002).

kds's own reading of NData, written for the server side and sharing nothing
with the PORTOS adapter's client-side parser (`kds.sources.portos.ndata`): both encode
the seed, and a bug they shared would hide in the tests of both.

* Filters (`deviceName, id, number, ticketId, ticketName, userUserName,
  isProcessed, isProcessable, source, externalId, posNumber, endpoint, status`; names are
  case-insensitive) each take one or more conditions, separated by `;` or given
  as repeated parameters; all must hold, and filters combine with AND.
* A condition is `op:arg` — `eq ne|neq gt gte|ge lt lte|le` compare,
  `in:a,b` / `nin|notin:a,b` test membership, `contains startswith endswith`
  match text case-insensitively, `isnull` / `isnotnull` test for a missing
  value — or a plain value: equality, or any of a comma-separated list.
  Operator names are case-insensitive; which apply depends on the filter's type.
* Paging `$skip` (0-1,000,000,000), `$take` (0-1000, default 100); `$sort` a
  comma-separated list of keys with `:asc`/`:desc` or a leading `-`
  (case-insensitive, repeated `$sort`s concatenate, a key named again is
  ignored); `$count=true` answers the counts alone.
* With `endpoint`, `status`, `isProcessed` and `isProcessable` apply to the
  order's items at that endpoint.

What a typed filter accepts is exactly its regular expression (`pattern`),
which the OpenAPI document publishes: the document cannot drift from the parser.
"""

from __future__ import annotations

import enum
import functools
import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from multidict import MultiMapping

from ..errors import BadRequest
from ..model import Order, OrderStatus
from ..states import FINAL, PROCESSABLE
from .params import parse_int
from .views import View

MAX_TAKE = 1000
DEFAULT_TAKE = 100
MAX_SKIP = 10**9

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "ge": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "le": operator.le,
}
_EQUALITY = ("eq", "ne", "neq")
_SETS = ("in", "nin", "notin")
_TEXT_MATCH = ("contains", "startswith", "endswith")
_NULLS = ("isnull", "isnotnull")
_OPERATORS = frozenset(_COMPARE) | frozenset(_SETS) | frozenset(_TEXT_MATCH) | frozenset(_NULLS)


def _any_case(word: str) -> str:
    """A regex matching `word` in any letter case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


def _one_of(words: Iterable[str]) -> str:
    return "(?:" + "|".join(_any_case(w) for w in sorted(words, key=len, reverse=True)) + ")"


class Kind(enum.Enum):
    """A filter's value type: which operators apply and how arguments are read."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STATUS = "status"
    ENDPOINT = "endpoint"


_STATUS_NAMES = {s.value.lower(): s for s in OrderStatus}
_INTEGER = re.compile(r"[0-9]{1,18}")  # numbers are never negative
_ENDPOINT = r"[A-Za-z0-9_-]{1,64}"

#: Per typed kind: (operators that apply, regex of one argument, how to read one).
_TYPED: dict[Kind, tuple[tuple[str, ...], str, Callable[[str], Any]]] = {
    Kind.INTEGER: ((*_COMPARE, *_SETS), _INTEGER.pattern, int),
    Kind.BOOLEAN: (_EQUALITY, _one_of(["true", "false"]), lambda text: text.lower() == "true"),
    Kind.STATUS: (
        (*_EQUALITY, *_SETS),
        _one_of(_STATUS_NAMES),
        lambda text: _STATUS_NAMES[text.lower()],
    ),
}


def _typed_pattern(kind: Kind) -> str:
    ops, arg, _ = _TYPED[kind]
    single = [op for op in ops if op not in _SETS]
    listed = f"{arg}(?:,{arg})*"
    condition = f"(?:{_one_of(single)}:{arg}|{_one_of(_SETS)}:{listed}|{listed})"
    return f"^{condition}(?:;{condition})*$"


#: The exact language of each typed filter (text filters accept any string).
PATTERNS: dict[Kind, str] = {kind: _typed_pattern(kind) for kind in _TYPED}
PATTERNS[Kind.ENDPOINT] = f"^(?:{_any_case('eq')}:)?{_ENDPOINT}$"


@functools.cache
def _compiled(kind: Kind) -> re.Pattern[str]:
    """A typed filter's regex, compiled when first used: the status one takes ~20 ms, not every start's."""
    return re.compile(PATTERNS[kind])


_EXAMPLES = {
    Kind.INTEGER: "gt:100;lt:200, in:7,8 or 7",
    Kind.BOOLEAN: "true, eq:false or ne:true",
    Kind.STATUS: "sent, ne:processed or in:sent,delivered",
    Kind.ENDPOINT: "grill or eq:grill",
}


def _user_name(order: Order) -> str | None:
    user = order.user
    if isinstance(user, dict):
        return user.get("userName") or user.get("name")
    return user


@dataclass(frozen=True)
class Filter:
    """One filterable member of an order."""

    name: str
    kind: Kind
    getter: Callable[[Order], Any] | None = None  # None: evaluated at the query's endpoint


FILTERS: dict[str, Filter] = {
    f.name.lower(): f
    for f in (
        Filter("deviceName", Kind.TEXT, lambda o: o.device_name),
        Filter("id", Kind.TEXT, lambda o: o.id),
        Filter("number", Kind.INTEGER, lambda o: o.number),
        Filter("posNumber", Kind.INTEGER, lambda o: o.pos_number),
        Filter("ticketId", Kind.TEXT, lambda o: o.ticket.id),
        Filter("ticketName", Kind.TEXT, lambda o: o.ticket.name),
        Filter("userUserName", Kind.TEXT, _user_name),
        Filter("isProcessed", Kind.BOOLEAN),
        Filter("isProcessable", Kind.BOOLEAN),
        Filter("source", Kind.TEXT, lambda o: o.source),
        Filter("externalId", Kind.TEXT, lambda o: o.external_id),
        Filter("endpoint", Kind.ENDPOINT),
        Filter("status", Kind.STATUS),
    )
}

#: Sort keys → value of an order (names as documented; matched case-insensitively).
SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "number": lambda o: o.number,
    "posNumber": lambda o: o.pos_number if o.pos_number is not None else -1,
    "deviceName": lambda o: o.device_name or "",
    "ticketId": lambda o: o.ticket.id or "",
    "ticketName": lambda o: o.ticket.name or "",
    "source": lambda o: o.source,
    "externalId": lambda o: o.external_id,
    "createdAt": lambda o: o.created_at,
    "updatedAt": lambda o: o.updated_at,
    "status": lambda o: o.status_at().value,
}
_SORT_BY_LOWER = {name.lower(): getter for name, getter in SORT_KEYS.items()}
_SORT_KEY = f"-?{_one_of(SORT_KEYS)}(?::{_one_of(['asc', 'desc'])})?"
SORT_PATTERN = f"^(?:{_SORT_KEY}(?:,{_SORT_KEY})*)?$"
_SORT = re.compile(SORT_PATTERN)
_COUNT = re.compile(_TYPED[Kind.BOOLEAN][1])
PAGING = {"$skip": MAX_SKIP, "$take": MAX_TAKE}


@dataclass(frozen=True)
class Condition:
    """One NData condition: an operator and its (already typed) arguments."""

    op: str
    args: tuple[Any, ...] = ()

    def holds(self, value: Any) -> bool:
        """Whether `value` satisfies the condition (a missing value only equals nothing)."""
        op = self.op
        if op in _NULLS:
            return (value is None) == (op == "isnull")
        if op in _SETS:
            return (value in self.args) == (op == "in")
        if op in ("ne", "neq"):
            return value != self.args[0]
        if value is None:
            return False
        if op in _TEXT_MATCH:
            hay, needle = str(value).lower(), str(self.args[0]).lower()
            return needle in hay if op == "contains" else getattr(hay, op)(needle)
        return _COMPARE[op](value, self.args[0])


def _text_conditions(raw: str) -> list[Condition]:
    """Any string is a valid text filter: what is not an operator form is a plain value."""
    conditions = []
    for part in raw.split(";"):
        head, sep, rest = part.partition(":")
        op = head.lower()
        if sep and op in _OPERATORS and not (op in _NULLS and rest):
            args = tuple(rest.split(",")) if op in _SETS else (rest,)
            conditions.append(Condition(op, () if op in _NULLS else args))
        elif not sep and op in _NULLS:
            conditions.append(Condition(op))
        else:
            conditions.append(
                Condition("in", tuple(part.split(","))) if "," in part else Condition("eq", (part,))
            )
    return conditions


def _typed_conditions(spec: Filter, raw: str) -> list[Condition]:
    if not _compiled(spec.kind).fullmatch(raw):
        raise BadRequest(_why_not(spec, raw))
    ops, _, read = _TYPED[spec.kind]
    conditions = []
    for part in raw.split(";"):
        head, sep, rest = part.partition(":")
        if sep and head.lower() in ops:
            op, values = head.lower(), rest
        else:
            op, values = ("in" if "," in part else "eq"), part
        args = tuple(read(v) for v in values.split(","))
        conditions.append(Condition(op, args))
    return conditions


def _why_not(spec: Filter, raw: str) -> str:
    """A 400's detail: what is wrong with a typed filter's value, as precisely as we can say."""
    if raw == "":
        return f"{spec.name} needs a value (e.g. {_EXAMPLES[spec.kind]})"
    if spec.kind is Kind.ENDPOINT:
        return f"endpoint takes one endpoint name (or eq:NAME), got {raw!r}"
    ops, arg, _ = _TYPED[spec.kind]
    for part in raw.split(";"):
        head, sep, rest = part.partition(":")
        if sep and head.lower() in _OPERATORS and head.lower() not in ops:
            return f"operator {head!r} does not apply to {spec.name} (allowed: {', '.join(ops)})"
        values = rest if sep and head.lower() in ops else part
        for value in values.split(","):
            if not re.fullmatch(arg, value):
                if spec.kind is Kind.STATUS:
                    return f"{spec.name}: unknown status {value!r}; known: {', '.join(s.value for s in OrderStatus)}"
                return f"{spec.name}: {value!r} is not a valid {spec.kind.value} in {raw!r} (e.g. {_EXAMPLES[spec.kind]})"
    return f"{spec.name}: {raw!r} is not valid NData (e.g. {_EXAMPLES[spec.kind]})"


@dataclass
class OrderQuery:
    """A parsed, validated orders query."""

    conditions: list[tuple[Filter, Condition]] = field(default_factory=list)
    endpoint: str | None = None
    skip: int = 0
    take: int = DEFAULT_TAKE
    sort: list[tuple[Callable[[Order], Any], bool]] = field(default_factory=list)
    count_only: bool = False

    def _value(self, spec: Filter, order: Order) -> Any:
        if spec.getter is not None:
            return spec.getter(order)
        if spec.kind is Kind.STATUS:
            return order.status_at(self.endpoint)
        statuses = [e.status for e in order.item_endpoints(self.endpoint)]
        if spec.name == "isProcessed":  # every item endpoint (at `endpoint`) is final
            return all(s in FINAL for s in statuses)
        return any(s in PROCESSABLE for s in statuses)

    def matches(self, order: Order) -> bool:
        """Whether `order` satisfies every condition."""
        if self.endpoint is not None and self.endpoint not in order.endpoint_names():
            return False
        return all(c.holds(self._value(spec, order)) for spec, c in self.conditions)

    def run(self, orders: Iterable[Order], view: View | None = None) -> str:
        """Apply to `orders` as `view` sees them; the JSON of a QueryResult `{items, count, totalCount}`."""
        view = view or View()
        matched = [o for o in orders if view.shows(o) and self.matches(o)]
        for key, descending in reversed(self.sort):  # stable sorts, last key first
            matched.sort(key=key, reverse=descending)
        if self.count_only:
            return json.dumps({"count": len(matched), "totalCount": len(matched)})
        page = matched[self.skip : self.skip + self.take]
        items = ",".join(view.order_json(o) for o in page)  # reused where already encoded
        return f'{{"items":[{items}],"count":{len(page)},"totalCount":{len(matched)}}}'


def _sort_keys(values: list[str], query: OrderQuery) -> None:
    seen: set[str] = set()
    for raw in values:
        if not _SORT.fullmatch(raw):
            raise BadRequest(
                f"$sort: {raw!r} cannot sort by that: expected keys like number:desc,-createdAt; keys: {', '.join(SORT_KEYS)}"
            )
        for part in filter(None, raw.split(",")):
            name, _, direction = part.lstrip("-").partition(":")
            descending = direction.lower() == "desc" if direction else part.startswith("-")
            if name.lower() not in seen:
                seen.add(name.lower())
                query.sort.append((_SORT_BY_LOWER[name.lower()], descending))


def parse_order_query(params: MultiMapping[str]) -> OrderQuery:
    """Validate the query parameters (every repeat of each); BadRequest names the bad one."""
    query = OrderQuery()
    sorts: list[str] = []
    for name, raw in params.items():
        lowered = name.lower()
        if lowered in PAGING:
            setattr(query, lowered[1:], parse_int(lowered, raw, high=PAGING[lowered]))
        elif lowered == "$count":
            if not _COUNT.fullmatch(raw):
                raise BadRequest(f"$count must be true or false, got {raw!r}")
            query.count_only = raw.lower() == "true"
        elif lowered == "$sort":
            sorts.append(raw)
        elif (spec := FILTERS.get(lowered)) is None:
            known = ", ".join(
                [f.name for f in FILTERS.values()] + ["$skip", "$take", "$sort", "$count"]
            )
            raise BadRequest(f"unknown query parameter {name!r}; known: {known}")
        elif spec.kind is Kind.ENDPOINT:
            if not _compiled(Kind.ENDPOINT).fullmatch(raw) or (
                query.endpoint not in (None, raw.rpartition(":")[2])
            ):
                raise BadRequest(_why_not(spec, raw))
            query.endpoint = raw.rpartition(":")[2]
        elif spec.kind is Kind.TEXT:
            query.conditions += [(spec, c) for c in _text_conditions(raw)]
        else:
            query.conditions += [(spec, c) for c in _typed_conditions(spec, raw)]
    _sort_keys(sorts, query)
    return query
