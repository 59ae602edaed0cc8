"""The cheques source: poll open cheques and diff them against the kitchen.

The cheques API (seed 003) answers `GET_CHEQUES` (header
`INTENT_OPERATION_TYPE`, body `{"uuids": []}`, optional `Auth-token`) with every
open cheque: `Postponed` ones and `Order` ones at a table and place, each with
items whose money and quantities are strings. It says nothing about what
changed, so every poll diffs each cheque, by uuid, against what kds already has:

* the key of a line is its (code, name): a price correction is the same dish.
  Lines may lack name and code (as in the seed's example) and still reach the
  kitchen, labelled by position and price; for them the price is the only
  identity there is, so it is their key. Quantities of equal keys are summed
  (a multiset); a negative line (a return or correction) subtracts;
* more of a key than kds has → the difference becomes a new kitchen order of
  that cheque (`{uuid}#{n}`), routed like any other;
* less of a key → whole kitchen items are cancelled (VOID where printed),
  newest first; when only part of an item went, it is cancelled and the rest
  is sent again as a new order, so the kitchen never makes too much;
* a cheque that disappears is finished: kds stops tracking it and leaves its
  tickets to the cooks (paying a cheque does not un-cook it). A missing or
  empty answer is never read as "everything was removed";
* a line kds cannot read is never taken as removed: its key (or, when even
  that is unknown, the whole cheque) voids nothing until it reads again, and it
  is logged and listed in `/readyz` (`unreadableLines`).

A non-200 `resultCode` (488 "cheque not found" included) or an unreadable
answer fails the poll (`SourceUnavailable`); the base backs off and nothing
is changed. With a `pin`, the `AUTH` intent fetches the token, renewed when
the API rejects it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..config import Duration
from ..errors import ConflictError, KdsError, NotFound
from ..model import (
    MAX_TEXT,
    Location,
    Order,
    OrderIn,
    OrderItemIn,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    TicketInfo,
)
from .base import HttpUrl, Poller, SourceContext, SourceUnavailable

log = structlog.get_logger(__name__)

WRITES_BACK = False
KEY_PREFIX = "cheques:"
AUTH_FAILURES = frozenset({401, 403, 498, 499})


class Config(BaseModel):
    """[[sources]] type = "cheques"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cheques"] = "cheques"
    name: str = Field(default="cheques", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    url: HttpUrl
    method: Literal["POST", "PUT", "GET"] = "POST"
    auth_token: SecretStr | None = None
    pin: SecretStr | None = None
    poll_interval: Duration = 2.0
    request_timeout: Duration = 5.0
    max_backoff: Duration = 30.0
    cheque_types: list[str] = Field(default_factory=lambda: ["Postponed", "Order"])


class ChequesUnavailable(SourceUnavailable):
    """The API answered, but with an error resultCode."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(f"cheques API resultCode {code}: {detail}")
        self.code = code


# --------------------------------------------------------------------------- parsing


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


def parse_decimal(value: Any) -> Decimal | None:
    """A money or quantity string ("5", "60.5", "3,5") as Decimal; None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text[:MAX_TEXT] or None


def _code(value: Any) -> int | str | None:
    if isinstance(value, dict):  # {"type": 0, "value": 10}
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = _text(value)
    return text[:64] if text else None


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
        price = parse_decimal(parts[2]) if len(parts) > 2 else None
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    key = line_key(code, name, price)
    return None if key is None else (key, price)


def _read_line(item: Any, position: int) -> Line | Unreadable | None:
    """One cheque line; None for a line of quantity 0 (nothing to make)."""
    if not isinstance(item, dict):
        return Unreadable(position, f"line is a {type(item).__name__}, expected an object", None)
    code, name = _code(item.get("code")), _text(item.get("name"))
    price = parse_decimal(item.get("price"))
    quantity = parse_decimal(item.get("quantity"))
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
    if not isinstance(data, dict):
        raise ChequesUnavailable(None, f"answer is a {type(data).__name__}, expected an object")
    code = data.get("resultCode")
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        code = int(code)
    if code != 200:
        detail = _text(data.get("messageDetail")) or _text(data.get("messageTitle")) or "no detail"
        raise ChequesUnavailable(code if isinstance(code, int) else None, detail)
    raw = data.get("cheques")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ChequesUnavailable(200, "`cheques` is not a list")
    cheques = []
    for entry in raw:
        info = entry.get("info") if isinstance(entry, dict) else None
        uuid = _text(info.get("uuid")) if isinstance(info, dict) else None
        if uuid is None:
            log.warning("cheques.unreadable_cheque", cheque=str(entry)[:200])
            continue
        assert isinstance(info, dict)
        lines, unreadable = [], []
        items = entry.get("items") or []
        for position, item in enumerate(items if isinstance(items, list) else [items]):
            read = _read_line(item, position)
            if isinstance(read, Unreadable):
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
        cheques.append(
            Cheque(
                uuid=uuid,
                name=_text(info.get("name")),
                kind=_text(info.get("chequeType")),
                table=_text(info.get("table")),
                place=_text(info.get("place")),
                lines=lines,
                unreadable=unreadable,
            )
        )
    return cheques


def _label(line: Line) -> str:
    """The kitchen's name of a line: its name, else its position and price."""
    if line.name:
        return line.name
    price = format(line.price.quantize(Decimal("0.01")), "f") if line.price is not None else "?"
    return f"#{line.position + 1} · {price}" + (
        f" (code {line.code})" if line.code is not None else ""
    )


def _three_places(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    return (
        value.quantize(Decimal("0.001")) if isinstance(exponent, int) and exponent < -3 else value
    )


# --------------------------------------------------------------------------- the source


@dataclass
class KdsLine:
    """A live kitchen item of a cheque."""

    order: Order
    item_id: int
    quantity: Decimal


class ChequesSource(Poller):
    """Polls the cheques API and turns each cheque's changes into orders and VOIDs."""

    def __init__(self, config: Config, ctx: SourceContext) -> None:
        super().__init__(config.name, ctx, config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = (
            config.auth_token.get_secret_value() if config.auth_token else None
        )
        self._tracked: set[str] = set()
        self._unreadable: dict[str, list[Unreadable]] = {}
        self.finished: list[str] = []

    async def start(self) -> None:
        """Open the HTTP session and start polling."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout)
        )
        self._tracked = {
            _cheque_uuid(o) for o in self.ctx.service.orders() if o.source == self.name
        }
        # An open cheque's orders stay live however long it stays open: archived, its
        # lines would look unsent and go to the kitchen again.
        self.ctx.service.hold_while(self._is_open_cheque_order)
        await super().start()

    def _is_open_cheque_order(self, order: Order) -> bool:
        return order.source == self.name and _cheque_uuid(order) in self._tracked

    async def stop(self) -> None:
        """Stop polling and close the session."""
        await super().stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def health(self) -> dict[str, Any]:
        """Poll health, how many cheques are tracked, and the lines kds could not read."""
        health = super().health()
        unreadable = [
            u.to_json(uuid) for uuid, lines in sorted(self._unreadable.items()) for u in lines
        ]
        return {
            **health,
            "ok": health["ok"] and not unreadable,
            "trackedCheques": len(self._tracked),
            "unreadableLines": unreadable[:50],
        }

    # ------------------------------------------------------------------ API

    async def _call(self, intent: str, body: dict[str, Any]) -> Any:
        assert self._session is not None, "source not started"
        headers = {
            "INTENT_OPERATION_TYPE": intent,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if self._token and intent != "AUTH":
            headers["Auth-token"] = self._token
        try:
            async with self._session.request(
                self.config.method, self.config.url, data=json.dumps(body), headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as err:
            raise SourceUnavailable(f"cheques API unreachable: {type(err).__name__} {err}") from err
        if status >= 300:
            raise SourceUnavailable(f"cheques API answered HTTP {status}")
        try:
            return json.loads(raw)
        except ValueError as err:
            raise SourceUnavailable("cheques API sent something that is not JSON") from err

    async def _authenticate(self) -> None:
        assert self.config.pin is not None
        data = await self._call("AUTH", {"pin": self.config.pin.get_secret_value()})
        token = None
        if isinstance(data, dict):
            if data.get("resultCode") not in (200, "200", None):
                raise ChequesUnavailable(
                    data.get("resultCode"), _text(data.get("messageDetail")) or "AUTH refused"
                )
            token = next(
                (
                    data[k]
                    for k in ("token", "authToken", "Auth-token", "auth_token")
                    if data.get(k)
                ),
                None,
            )
            if token is None and isinstance(data.get("data"), dict):
                token = data["data"].get("token")
        if not token:
            raise SourceUnavailable("cheques API AUTH answer carries no token")
        self._token = str(token)

    async def fetch(self) -> list[Cheque]:
        """Every open cheque (authenticating first / again when a PIN is configured)."""
        if self.config.pin is not None and self._token is None:
            await self._authenticate()
        try:
            return parse_cheques(await self._call("GET_CHEQUES", {"uuids": []}))
        except ChequesUnavailable as err:
            if err.code in AUTH_FAILURES and self.config.pin is not None:
                await self._authenticate()
                return parse_cheques(await self._call("GET_CHEQUES", {"uuids": []}))
            raise

    # ------------------------------------------------------------------ diff

    async def poll(self) -> None:
        """Read every cheque and bring the kitchen in line with it."""
        cheques = [
            c for c in await self.fetch() if c.kind is None or c.kind in self.config.cheque_types
        ]
        orders = self._orders_by_cheque()
        seen = set()
        for cheque in cheques:
            seen.add(cheque.uuid)
            try:
                await self._sync(cheque, orders.get(cheque.uuid, []))
            except KdsError as err:
                log.error("cheques.sync_failed", uuid=cheque.uuid, error=err.detail)
        for uuid in sorted(self._tracked - seen):
            log.info("cheques.finished", uuid=uuid)
            self.finished.append(uuid)
        del self.finished[:-1000]
        self._tracked = seen
        self._unreadable = {c.uuid: c.unreadable for c in cheques if c.unreadable}

    def _orders_by_cheque(self) -> dict[str, list[Order]]:
        by_uuid: dict[str, list[Order]] = defaultdict(list)
        for order in self.ctx.service.orders():
            if order.source == self.name and "#" in order.external_id:
                by_uuid[_cheque_uuid(order)].append(order)
        return by_uuid

    @staticmethod
    def _live_lines(orders: list[Order]) -> dict[str, list[KdsLine]]:
        """The cheque's kitchen items that are not cancelled, by key, oldest first."""
        lines: dict[str, list[KdsLine]] = defaultdict(list)
        for order in sorted(orders, key=lambda o: (o.created_at, o.external_id)):
            for item in order.items:
                if all(e.status is OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                    continue
                stored = stored_key(item.plu.stock_name)
                if stored is None:
                    continue
                lines[stored[0]].append(KdsLine(order, item.id, Decimal(item.quantity.amount)))
        return lines

    async def _sync(self, cheque: Cheque, orders: list[Order]) -> None:
        wanted: dict[str, Decimal] = defaultdict(Decimal)
        sample: dict[str, Line] = {}
        for line in cheque.lines:
            wanted[line.key] += line.quantity
            if line.quantity > 0:
                sample.setdefault(line.key, line)
        # A line kds could not read may be any of the dishes: its key (or, unknown, every key) voids nothing.
        frozen = {u.key for u in cheque.unreadable}
        have = self._live_lines(orders)
        additions: list[tuple[Line, Decimal]] = []
        cancels: dict[str, list[int]] = defaultdict(list)
        orders_by_id = {o.id: o for o in orders}
        for key in sorted(set(wanted) | set(have)):
            if key in frozen:
                continue
            kds_lines = have.get(key, [])
            # More returned than ordered cannot un-make more than the kitchen has.
            delta = max(wanted.get(key, Decimal(0)), Decimal(0)) - sum(
                (k.quantity for k in kds_lines), Decimal(0)
            )
            if delta > 0 and key in sample:
                additions.append((sample[key], delta))
            elif delta < 0 and None not in frozen:
                excess = -delta
                # Whole items first, newest first; then split one item if some excess is left.
                for kds_line in reversed(kds_lines):
                    if kds_line.quantity <= excess:
                        cancels[kds_line.order.id].append(kds_line.item_id)
                        excess -= kds_line.quantity
                        if excess == 0:
                            break
                if excess > 0:
                    rest = [k for k in kds_lines if k.item_id not in cancels.get(k.order.id, [])]
                    split = min(rest, key=lambda k: k.quantity)
                    cancels[split.order.id].append(split.item_id)
                    keep = split.quantity - excess
                    line = sample.get(key) or self._line_from_item(split)
                    additions.append((line, keep))
        for order_id, item_ids in cancels.items():
            try:
                await self.ctx.service.cancel(
                    order_id, item_ids=item_ids, reason="removed from the cheque", actor=self.name
                )
            except NotFound:
                log.info(
                    "cheques.cancel_of_archived_order", order=orders_by_id[order_id].external_id
                )
            log.info("cheques.voided", uuid=cheque.uuid, order=order_id, items=item_ids)
        if additions:
            await self._add(cheque, orders, additions)

    @staticmethod
    def _line_from_item(kds_line: KdsLine) -> Line:
        item = kds_line.order.item(kds_line.item_id)
        assert item is not None
        stored = stored_key(item.plu.stock_name)
        assert stored is not None
        key, price = stored
        code, name = json.loads(key)[:2]
        return Line(key, code, name, price, kds_line.quantity, 0)

    async def _add(
        self, cheque: Cheque, orders: list[Order], additions: list[tuple[Line, Decimal]]
    ) -> None:
        n = max((_part_number(o) for o in orders), default=0) + 1
        items = [
            OrderItemIn(
                id=i,
                plu=Plu(name=_label(line), code=line.code, stock_name=KEY_PREFIX + line.key),
                quantity=Quantity(amount=_three_places(quantity)),
            )
            for i, (line, quantity) in enumerate(
                sorted(additions, key=lambda a: a[0].position), start=1
            )
        ]
        table = cheque.table
        if table and cheque.place:
            table = f"{table} · {cheque.place}"
        order_in = OrderIn(
            id=f"{cheque.uuid}#{n}",
            source=self.name,
            device_name=self.name,
            ticket=TicketInfo(
                id=cheque.uuid,
                name=cheque.name or (f"Table {cheque.table}" if cheque.table else None),
                location=Location(table_name=table) if table else None,
                purchase_type=PurchaseType.WALK_IN
                if cheque.kind == "Order"
                else PurchaseType.UNKNOWN,
            ),
            items=items,
        )
        for attempt in range(100):
            try:
                result = await self.ctx.service.ingest(order_in, actor=self.name)
            except ConflictError:
                result = None
            if result is not None and result.created:
                break
            # `#n` belongs to an order archived meanwhile: take the next number.
            order_in = order_in.model_copy(update={"id": f"{cheque.uuid}#{n + attempt + 1}"})
        else:
            raise SourceUnavailable(f"no free order number for cheque {cheque.uuid}")
        log.info(
            "cheques.order",
            uuid=cheque.uuid,
            order=result.order.id,
            items=len(items),
            created=result.created,
        )


def _cheque_uuid(order: Order) -> str:
    """The cheque an order came from (its external id is `{uuid}#{n}`)."""
    return order.external_id.rsplit("#", 1)[0]


def create(config: Config, ctx: SourceContext) -> ChequesSource:
    """The cheques source component."""
    return ChequesSource(config, ctx)


def _part_number(order: Order) -> int:
    """The n of an order kds made as `<cheque>#<n>`; 0 for any other id."""
    suffix = order.external_id.rsplit("#", 1)[-1]
    return int(suffix) if suffix.isascii() and suffix.isdigit() else 0
