"""Where a cheque becomes kitchen lines: reading a `GET_CHEQUES` answer, line keys.

Pure functions of the answer's JSON (seed 003): which cheques are open, their
lines as (key, quantity) the diff in `source.py` compares, and the lines kds
could not read (never taken as removed). Money and quantities come as strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from ..base import SourceUnavailable
from ..coerce import as_decimal, text

log = structlog.get_logger(__name__)

#: Kitchen items made from a cheque line keep its key in `plu.stock_name` behind this prefix.
KEY_PREFIX = "cheques:"


class ChequesUnavailable(SourceUnavailable):
    """The API answered, but with an error resultCode."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(f"cheques API resultCode {code}: {detail}")
        self.code = code


@dataclass(frozen=True)
class Line:
    """One cheque line as kds reads it."""

    key: str  # JSON [code, name] (or [null, null, price]): what the diff compares
    code: int | str | None
    name: str | None
    price: Decimal | None
    quantity: Decimal  # negative for a return or correction line
    position: int


@dataclass(frozen=True)
class Unreadable:
    """A cheque line kds could not read: reported, and never taken as removed."""

    position: int
    reason: str
    key: str | None  # the line's key when at least that was readable

    def to_json(self, uuid: str) -> dict[str, Any]:
        """The `/readyz` entry (position counted from 1, as on the kitchen label)."""
        return {"cheque": uuid, "position": self.position + 1, "reason": self.reason}


@dataclass
class Cheque:
    """One open cheque as kds reads it."""

    uuid: str
    name: str | None
    kind: str | None
    table: str | None
    place: str | None
    lines: list[Line]
    unreadable: list[Unreadable] = field(default_factory=list)


def _code(value: Any) -> int | str | None:
    if isinstance(value, dict):  # {"type": 0, "value": 10}
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    label = text(value)
    return label[:64] if label else None


def line_key(code: int | str | None, name: str | None, price: Decimal | None) -> str | None:
    """The diff key of a line: (code, name); a line with neither is known by its price ("5" == "5.00")."""
    if code is not None or name is not None:
        return json.dumps([code, name], ensure_ascii=False)
    if price is None:
        return None
    return json.dumps([None, None, format(price.normalize(), "f")], ensure_ascii=False)


def stored_key(stock_name: str | None) -> tuple[str, Decimal | None] | None:
    """The key and price kept with a kitchen item; keys stored before price left the key are converted."""
    if not stock_name or not stock_name.startswith(KEY_PREFIX):
        return None
    try:
        parts = json.loads(stock_name[len(KEY_PREFIX) :])
        code, name = parts[0], parts[1]
        price = as_decimal(parts[2]) if len(parts) > 2 else None
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    key = line_key(code, name, price)
    return None if key is None else (key, price)


def _read_line(item: Any, position: int) -> Line | Unreadable | None:
    """One cheque line; None for a line of quantity 0 (nothing to make)."""
    if not isinstance(item, dict):
        return Unreadable(position, f"line is a {type(item).__name__}, expected an object", None)
    code, name = _code(item.get("code")), text(item.get("name"))
    price = as_decimal(item.get("price"))
    quantity = as_decimal(item.get("quantity"))
    key = line_key(code, name, price)
    if key is None:
        return Unreadable(
            position,
            f"no name or code and an unreadable price {str(item.get('price'))[:40]!r}",
            None,
        )
    if quantity is None:
        return Unreadable(position, f"unreadable quantity {str(item.get('quantity'))[:40]!r}", key)
    if quantity == 0:
        return None
    return Line(key, code, name, price, quantity, position)


def parse_cheques(data: Any) -> list[Cheque]:
    """Read a ChequesResponse; raise ChequesUnavailable for errors or a shape kds cannot read."""
    return [c for c in map(read_cheque, cheque_entries(data)) if c is not None]


def cheque_entries(data: Any) -> list[Any]:
    """The raw cheques of a ChequesResponse; raise ChequesUnavailable for an error answer."""
    if not isinstance(data, dict):
        raise ChequesUnavailable(None, f"answer is a {type(data).__name__}, expected an object")
    code = data.get("resultCode")
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        code = int(code)
    if code != 200:
        detail = text(data.get("messageDetail")) or text(data.get("messageTitle")) or "no detail"
        raise ChequesUnavailable(code if isinstance(code, int) else None, detail)
    raw = data.get("cheques")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ChequesUnavailable(200, "`cheques` is not a list")
    return raw


def read_cheque(entry: Any, *, quiet: bool = False) -> Cheque | None:
    """One raw cheque as kds reads it; None without a uuid. Unreadable lines are logged."""
    info = entry.get("info") if isinstance(entry, dict) else None
    uuid = text(info.get("uuid")) if isinstance(info, dict) else None
    if uuid is None:
        if not quiet:
            log.warning("cheques.unreadable_cheque", cheque=str(entry)[:200])
        return None
    assert isinstance(info, dict) and isinstance(entry, dict)
    lines, unreadable = [], []
    items = entry.get("items") or []
    for position, item in enumerate(items if isinstance(items, list) else [items]):
        read = _read_line(item, position)
        if isinstance(read, Unreadable):
            if not quiet:
                log.warning(
                    "cheques.unreadable_line",
                    uuid=uuid,
                    position=position,
                    reason=read.reason,
                    line=str(item)[:200],
                )
            unreadable.append(read)
        elif read is not None:
            lines.append(read)
    return Cheque(
        uuid=uuid,
        name=text(info.get("name")),
        kind=text(info.get("chequeType")),
        table=text(info.get("table")),
        place=text(info.get("place")),
        lines=lines,
        unreadable=unreadable,
    )


def label(line: Line) -> str:
    """The kitchen's name of a line: its name, else its position and price."""
    if line.name:
        return line.name
    price = format(line.price.quantize(Decimal("0.01")), "f") if line.price is not None else "?"
    return f"#{line.position + 1} · {price}" + (
        f" (code {line.code})" if line.code is not None else ""
    )
