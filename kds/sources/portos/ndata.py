"""NData: the PORTOS query syntax for filtering, sorting and paging collections.

Pure (no I/O), so the PORTOS simulator and kds's own `/api/v1/orders` can share
it. What PORTOS documents, and what this module accepts:

* paging: `$skip=N`, `$take=N`; `$count=true` answers only the counts;
* sorting: `$sort=a,b:desc,-c` — comma-separated keys, `:asc`/`:desc` or a
  leading `-`, case-insensitive, repeated parameters concatenate;
* filtering: `Member=OPERATION;OPERATION` where an operation is
  `operator:arg:arg`; a repeated member adds operations (all must hold).
  A value whose first segment is not a known operator is an equality test on
  the whole value (`isProcessable=true`, `id=2024:01` both work).

Operators (case-insensitive): `eq ne|neq gt gte|ge lt lte|le in nin|notin
contains startswith endswith isnull isnotnull`; string comparisons are
case-insensitive for `contains/startswith/endswith`, exact for `eq`. `in`
takes its values as further `:` segments or one comma-separated segment. The
vendor's exact operator list is not in our seeds; this is our reading of it.
"""

from __future__ import annotations

import operator as _op
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_TAKE = 1000


class NDataError(ValueError):
    """A query the syntax does not allow (unknown member, bad value, bad operator)."""


@dataclass(frozen=True)
class Operation:
    """One filter operation: an operator and its arguments (still text)."""

    operator: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class SortKey:
    """One `$sort` key (lower-case member name) and its direction."""

    member: str
    descending: bool = False


@dataclass(frozen=True)
class FieldSpec(Generic[T]):
    """How to read one filterable/sortable member from an item, and its type."""

    getter: Callable[[T], Any]
    type: type = str


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _op.eq,
    "ne": _op.ne,
    "neq": _op.ne,
    "gt": _op.gt,
    "gte": _op.ge,
    "ge": _op.ge,
    "lt": _op.lt,
    "lte": _op.le,
    "le": _op.le,
}
_TEXT = {"contains", "startswith", "endswith"}
_SET = {"in", "nin", "notin"}
_NULL = {"isnull", "isnotnull"}
OPERATORS = frozenset(_COMPARE) | _TEXT | _SET | _NULL


def parse_operations(values: str | Iterable[str]) -> list[Operation]:
    """Parse one member's value(s) into operations (all of which must hold)."""
    if isinstance(values, str):
        values = [values]
    ops: list[Operation] = []
    for value in values:
        for part in value.split(";"):
            if part == "":
                continue
            head, sep, rest = part.partition(":")
            name = head.strip().lower()
            if sep and name in OPERATORS:
                args = tuple(rest.split(":")) if rest != "" else ()
            elif not sep and name in _NULL:
                args = ()
            else:
                name, args = "eq", (part,)
            if name in _SET and len(args) == 1 and "," in args[0]:
                args = tuple(args[0].split(","))
            if name in _COMPARE or name in _TEXT:
                if len(args) != 1:
                    raise NDataError(f"operator {name!r} takes one argument, got {len(args)}")
            elif name in _SET and not args:
                raise NDataError(f"operator {name!r} needs at least one value")
            ops.append(Operation(name, args))
    return ops


def parse_sort(values: str | Iterable[str]) -> list[SortKey]:
    """`"a,b:desc,-c"` (or several such values) → sort keys, duplicates dropped."""
    if isinstance(values, str):
        values = [values]
    keys: list[SortKey] = []
    seen: set[str] = set()
    for value in values:
        for raw in value.split(","):
            raw = raw.strip()
            if not raw:
                continue
            descending = False
            if raw.startswith("-"):
                descending, raw = True, raw[1:]
            name, sep, direction = raw.partition(":")
            direction = direction.strip().lower()
            if sep:
                if direction not in ("asc", "desc"):
                    raise NDataError(f"sort direction must be asc or desc, got {direction!r}")
                descending = direction == "desc"
            member = name.strip().lower()
            if not member:
                raise NDataError("empty sort key")
            if member not in seen:
                seen.add(member)
                keys.append(SortKey(member, descending))
    return keys


def coerce(text: str, kind: type) -> Any:
    """Convert a filter argument to the member's type, or raise NDataError."""
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise NDataError(f"expected true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise NDataError(f"expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise NDataError(f"expected a number, got {text!r}") from None
    if kind is datetime:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise NDataError(f"expected an ISO 8601 date, got {text!r}") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return text


def _matches(value: Any, op: Operation, kind: type) -> bool:
    name = op.operator
    if name == "isnull":
        return value is None
    if name == "isnotnull":
        return value is not None
    if name in _SET:
        wanted = {coerce(a, kind) for a in op.args}
        inside = value in wanted
        return inside if name == "in" else not inside
    arg = coerce(op.args[0], kind)
    if name in _TEXT:
        if value is None:
            return False
        hay, needle = str(value).lower(), str(arg).lower()
        if name == "contains":
            return needle in hay
        return hay.startswith(needle) if name == "startswith" else hay.endswith(needle)
    if value is None:
        return name in ("ne", "neq")
    try:
        return _COMPARE[name](value, arg)
    except TypeError:
        raise NDataError(f"cannot compare {value!r} with {arg!r}") from None


@dataclass
class Query:
    """A parsed NData query: filters, sort keys, paging and the count flag."""

    filters: dict[str, list[Operation]] = field(default_factory=dict)
    sort: list[SortKey] = field(default_factory=list)
    skip: int = 0
    take: int | None = None
    count_only: bool = False


def parse_query(
    params: Mapping[str, Any] | Sequence[tuple[str, str]], members: Iterable[str]
) -> Query:
    """Parse query parameters against the known `members` (case-insensitive).

    `params` may be a multidict, a plain mapping or a list of pairs. Unknown
    filter members and bad `$` values raise NDataError.
    """
    known = {m.lower() for m in members}
    # A multidict's items() yields every pair, so repeated members are kept.
    pairs = list(params.items()) if hasattr(params, "items") else list(params)
    query = Query()
    sort_values: list[str] = []
    for key, value in pairs:
        value = str(value)
        lowered = key.lower()
        if lowered == "$skip":
            query.skip = _non_negative(key, value)
        elif lowered == "$take":
            query.take = min(_non_negative(key, value), MAX_TAKE)
        elif lowered == "$count":
            query.count_only = coerce(value, bool)
        elif lowered == "$sort":
            sort_values.append(value)
        elif lowered.startswith("$"):
            continue  # $include and friends: accepted, not needed here
        elif lowered in known:
            query.filters.setdefault(lowered, []).extend(parse_operations(value))
        else:
            raise NDataError(f"unknown filter {key!r}")
    query.sort = parse_sort(sort_values)
    for key in query.sort:
        if key.member not in known:
            raise NDataError(f"unknown sort key {key.member!r}")
    return query


def _non_negative(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise NDataError(f"{key} must be an integer, got {value!r}") from None
    if number < 0:
        raise NDataError(f"{key} must not be negative")
    return number


class _Desc:
    """Inverts ordering for a descending sort key (works for any comparable value)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value


def _sort_value(value: Any) -> tuple[int, Any]:
    # None sorts first ascending; mixing None with values must not raise.
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.lower())
    return (1, value)


def apply(
    query: Query, items: Iterable[T], fields: Mapping[str, FieldSpec[T]]
) -> tuple[list[T], int]:
    """Filter, sort and page `items`; return (page, number matching before paging)."""
    spec = {name.lower(): f for name, f in fields.items()}
    selected = [
        item
        for item in items
        if all(
            _matches(spec[member].getter(item), op, spec[member].type)
            for member, ops in query.filters.items()
            for op in ops
        )
    ]
    for key in reversed(query.sort):  # stable sorts, last key first
        getter = spec[key.member].getter
        if key.descending:
            selected.sort(key=lambda item, g=getter: _Desc(_sort_value(g(item))))
        else:
            selected.sort(key=lambda item, g=getter: _sort_value(g(item)))
    matched = len(selected)
    end = None if query.take is None else query.skip + query.take
    return selected[query.skip : end], matched
