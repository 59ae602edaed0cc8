"""NData, the PORTOS query syntax, as this fake server reads it (written from the seeds).

Seed 002 lists the filters of `GET /orders` ("Supports NData syntax"), the
paging parameters `$skip`/`$take`, `$sort` ("comma separated list of property
names") and `$count` ("response will not contain items"). The operator syntax
is not in the seeds; this follows PORTOS's public NData notes as kds reads
them: `member=value` is equality, `member=op:arg` applies an operator (`eq ne
gt gte lt lte in nin contains startswith endswith`), `;` joins conditions that
must all hold, sort keys take `:asc`/`:desc` or a leading `-`. Member names
and operators are case-insensitive. Deliberately separate from kds's parser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Getter = Callable[[dict[str, Any]], Any]


class QueryError(ValueError):
    """The query cannot be answered (answered 400)."""


@dataclass
class Member:
    """A filterable and sortable property: how to read it and how to read its text."""

    get: Getter
    parse: Callable[[str], Any] = str


def boolean(text: str) -> bool:
    """`true` / `false` (any case)."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise QueryError(f"expected true or false, not {text!r}")
    return value == "true"


def integer(text: str) -> int:
    """A whole number."""
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"expected an integer, not {text!r}") from None


def _test(op: str, value: Any, args: list[Any]) -> bool:
    if op in ("in", "nin"):
        return (value in args) == (op == "in")
    (arg,) = args
    if op in ("contains", "startswith", "endswith"):
        text, part = str(value or "").lower(), str(arg).lower()
        return (
            part in text
            if op == "contains"
            else text.startswith(part)
            if op == "startswith"
            else text.endswith(part)
        )
    if op == "eq":
        return value == arg
    if op == "ne":
        return value != arg
    if value is None:
        return False
    try:
        return {"gt": value > arg, "gte": value >= arg, "lt": value < arg, "lte": value <= arg}[op]
    except TypeError:
        raise QueryError(f"cannot compare {value!r} with {arg!r}") from None


_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "startswith", "endswith"}


@dataclass
class Query:
    """What a collection request asks for."""

    conditions: list[tuple[Getter, str, list[Any]]] = field(default_factory=list)
    sort: list[tuple[Getter, bool]] = field(default_factory=list)
    skip: int = 0
    take: int | None = None
    count_only: bool = False

    def run(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """(the page, how many matched before paging)."""
        hits = [
            i for i in items if all(_test(op, get(i), args) for get, op, args in self.conditions)
        ]
        for get, descending in reversed(self.sort):
            hits.sort(
                key=lambda i, g=get: (g(i) is not None, g(i) if g(i) is not None else 0),
                reverse=descending,
            )
        end = None if self.take is None else self.skip + self.take
        return hits[self.skip : end], len(hits)


def parse(params: Any, members: Mapping[str, Member]) -> Query:
    """Read query parameters (a multidict or pairs) against `members`; QueryError when bad."""
    known = {name.lower(): m for name, m in members.items()}
    query = Query()
    pairs = params.items() if hasattr(params, "items") else params
    for key, raw in pairs:
        name = key.lower()
        if name in ("$skip", "$take"):
            number = integer(raw)
            if number < 0:
                raise QueryError(f"{key} cannot be negative")
            if name == "$skip":
                query.skip = number
            else:
                query.take = number
        elif name == "$count":
            query.count_only = boolean(raw)
        elif name == "$sort":
            for word in (w.strip() for w in raw.split(",")):
                if not word:
                    continue
                descending = word.startswith("-")
                word = word.lstrip("-")
                word, _, direction = word.partition(":")
                if direction:
                    if direction.lower() not in ("asc", "desc"):
                        raise QueryError(f"sort direction {direction!r} is not asc or desc")
                    descending = direction.lower() == "desc"
                member = known.get(word.lower())
                if member is None:
                    raise QueryError(f"cannot sort by {word!r}")
                query.sort.append((member.get, descending))
        elif name.startswith("$"):
            continue
        elif name in known:
            member = known[name]
            for condition in raw.split(";"):
                op, sep, rest = condition.partition(":")
                if sep and op.lower() in _OPS:
                    args = (
                        [a for a in rest.replace(",", ":").split(":")]
                        if op.lower() in ("in", "nin")
                        else [rest]
                    )
                    query.conditions.append(
                        (member.get, op.lower(), [member.parse(a) for a in args])
                    )
                else:
                    query.conditions.append((member.get, "eq", [member.parse(condition)]))
        else:
            raise QueryError(f"unknown filter {key!r}")
    return query
