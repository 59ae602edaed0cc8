"""An order's wire JSON written out directly: the bytes pydantic writes, at a fraction of the cost.

`Order.wire_json` runs for every new order and every change. pydantic spends most of an
order's encoding on its items: ~5,000 instructions per date and ~2,500 per status, a dozen
of each per order, the same creation steps encoded again for every item endpoint. Here an
order's items, item endpoints and status changes are written with f-strings; what repeats
(a product, a quantity, a date, a status change shared by the item endpoints) is encoded once
per order or once per object; the rarer, free-form parts (user, ticket, events, holds, acks)
still go through pydantic. `tests/test_wire.py` holds the output to pydantic's, byte for byte.
The header an order is stored with (`header_json`: snake_case, no items) is written alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from json.encoder import encode_basestring  # C: the escapes pydantic (serde_json) writes
from typing import Any, Final, TypeVar

from pydantic_core import to_json as _to_json

from .model import (
    ItemEndpoint,
    Location,
    Order,
    OrderItem,
    Plu,
    Quantity,
    StatusChange,
    TicketInfo,
    _decimal_to_json,
)
from .states import FINAL, PROCESSABLE, OrderStatus, summarize

#: The fields this module writes, in pydantic's order; `Order.wire_json` uses pydantic
#: itself for a model whose fields differ (a field added without teaching this module).
ORDER_FIELDS = (
    "id",
    "number",
    "pos_number",
    "source",
    "external_id",
    "device_name",
    "user",
    "ticket",
    "items",
    "created_at",
    "updated_at",
    "version",
    "rush",
    "allergen_acks",
    "events",
    "due_at",
    "holds",
)
ITEM_FIELDS = (
    "id",
    "plu",
    "quantity",
    "comment",
    "course_number",
    "modifiers",
    "endpoints",
    "allergens",
)
ENDPOINT_FIELDS = (
    "name",
    "status",
    "status_changes",
    "order_item_status",
    "is_processed",
    "is_processable",
)
PLU_FIELDS = ("name", "code", "stock_name", "group")
TICKET_FIELDS = ("id", "name", "location", "purchase_type", "customer", "version")
LOCATION_FIELDS = ("zone_name", "table_name")
QUANTITY_FIELDS = ("amount", "unit")
CHANGE_FIELDS = ("status", "date", "reason")


def _fields(cls: Any) -> tuple[str, ...]:
    return tuple(cls.__pydantic_fields__)


#: Whether the models are still the ones written out here (else pydantic encodes).
MATCHES = (
    _fields(Order) == ORDER_FIELDS
    and _fields(OrderItem) == ITEM_FIELDS
    and _fields(ItemEndpoint) == ENDPOINT_FIELDS
    and _fields(Plu) == PLU_FIELDS
    and _fields(TicketInfo) == TICKET_FIELDS
    and _fields(Location) == LOCATION_FIELDS
    and _fields(Quantity) == QUANTITY_FIELDS
    and tuple(StatusChange.__dataclass_fields__) == CHANGE_FIELDS
)


#: Encoded products and quantities by the object (shared ones: kds.interning), each kept
#: with its object so an id is never reused; bounded like the interning caches.
_PARTS: dict[int, tuple[object, str]] = {}
_PARTS_MAX = 8192
#: Encoded tables (`_location`: wire and header spellings) by the object, kept with it.
_LOCATIONS: dict[int, tuple[Location, tuple[str, str]]] = {}
#: An item endpoint's JSON around its status changes by its name, status, order item status,
#: isProcessed and isProcessable (a kitchen has a few stations and statuses); bounded.
_ENDPOINTS: dict[tuple[str, str, str, bool, bool], tuple[str, str]] = {}
#: What an item's JSON is made of besides its id and item endpoints: the ids of its product and
#: quantity (kept with the objects, which are shared: kds.interning), comment, course,
#: modifiers and allergens.
ItemKey = tuple[int, int, str | None, int | None, tuple[str, ...], tuple[str, ...]]
#: An item's JSON between its id and its item endpoints and after them, by its `ItemKey`
#: (orders of a menu repeat their items); bounded.
_ITEMS: dict[ItemKey, tuple[Plu, Quantity, str, str]] = {}
#: The most items and item endpoints kept (free-text comments make items that never repeat:
#: at most ~0.5 MB of them).
_ITEMS_MAX = 1024
#: Encoded lists of text (modifiers, allergens repeat as menus do); bounded.
_TEXT_LISTS: dict[tuple[str, ...], str] = {}
#: An order's encoded derived fields by its item endpoints' names and statuses (`_derived`):
#: orders repeat a few shapes (a menu's routes, in a few statuses). Keyed by value, bounded.
_DERIVED: dict[tuple[str, ...], tuple[str, frozenset[str]]] = {}
_NO_NAMES: frozenset[str] = frozenset()
_DERIVED_MAX = 1024


def order_json(order: Order) -> str:
    """The order's JSON as `to_json(order, by_alias=True, exclude_computed_fields=True)`."""
    return _order(order, derived=False)[0]


def wire_json(order: Order) -> str:
    """The order's whole wire JSON as `to_json(order, by_alias=True)`: its fields, then the
    four derived ones (status, endpointStatuses, isProcessed, isProcessable)."""
    return _order(order, derived=True)[0]


def wire_event(order: Order) -> tuple[str, frozenset[str]]:
    """`wire_json(order)` and the names of the endpoints its items are at (its event's
    `endpoints`), found in the same pass."""
    wire, names, _ = _order(order, derived=True)
    return wire, names


def wire_event_and_header(order: Order) -> tuple[str, frozenset[str], str, str]:
    """`wire_event(order)`, `header_json(order)` and `created_at.isoformat()` from one pass:
    the header's values are the wire JSON's own, under other names (a new order's are written
    before its event), and the ISO text of a UTC time is its JSON's."""
    wire, names, own = _order(order, derived=True)
    return wire, names, _header(own, order), _iso(order.created_at, own[_CREATED])


def _iso(when: datetime, encoded: str) -> str:
    """`when.isoformat()` from its JSON (`"…Z"` for UTC, `…+00:00` there), which costs a
    fifth of it (`tests/test_wire.py` holds them equal)."""
    if when.tzinfo is UTC and encoded[-2:] == 'Z"':
        return f"{encoded[1:-2]}+00:00"
    return when.isoformat()


def header_json(order: Order) -> str:
    """The order's stored header (`kds.store.rows`): `to_json(order, exclude=...)` of every
    field but its items and the derived ones, in snake_case."""
    return _header(_own(order, {}), order)


#: An order's own fields' values as its JSON writes them (`_own`), shared by its wire JSON and
#: its header: id, number, pos_number, source, external_id, device_name, user, the ticket's
#: id, name, location (the object), purchase_type, customer and version, created_at,
#: updated_at, version, rush, allergen_acks, due_at.
Own = tuple[
    str, int, str, str, str, str, str, str, str, "Location | None", str, str, str,
    str, str, int, str, str, str,
]  # fmt: skip
#: Where created_at's JSON is in `Own`.
_CREATED: Final = 13


def _own(order: Order, dates: dict[int, str]) -> Own:
    ticket, acks, due_at = order.ticket, order.allergen_acks, order.due_at
    customer = ticket.customer
    return (
        encode_basestring(order.id),
        order.number,
        _int(order.pos_number),
        encode_basestring(order.source),
        encode_basestring(order.external_id),
        _text(order.device_name),
        to_json(order.user).decode(),
        _text(ticket.id),
        _text(ticket.name),
        ticket.location,
        ticket.purchase_type._value_,
        "null" if customer is None else to_json(customer).decode(),
        _int(ticket.version),
        _date(order.created_at, dates),
        _date(order.updated_at, dates),
        order.version,
        "true" if order.rush else "false",
        to_json(acks).decode() if acks else "{}",
        "null" if due_at is None else _date(due_at, dates),
    )


def _order(order: Order, *, derived: bool) -> tuple[str, frozenset[str], Own]:
    # This call's encoded dates and item endpoint histories (ingest shares one `now` and one
    # creation path between an order's item endpoints), by object: the order holds them.
    dates: dict[int, str] = {}
    histories: dict[tuple[int, ...], str] = {}
    # Each item endpoint's name and status, in order: all the derived fields depend on.
    shape: list[str] = []
    items = ",".join([_item(item, dates, histories, shape) for item in order.items])
    own = _own(order, dates)
    (
        id_,
        number,
        pos_number,
        source,
        external_id,
        device_name,
        user,
        ticket_id,
        ticket_name,
        location,
        purchase_type,
        customer,
        ticket_version,
        created_at,
        updated_at,
        version,
        rush,
        acks,
        due_at,
    ) = own
    events, holds = order.events, order.holds
    tail, names = _derived(tuple(shape)) if derived else ("}", _NO_NAMES)
    return (
        f'{{"id":{id_},"number":{number},"posNumber":{pos_number},"source":{source},'
        f'"externalId":{external_id},"deviceName":{device_name},"user":{user},'
        f'"ticket":{{"id":{ticket_id},"name":{ticket_name},'
        f'"location":{"null" if location is None else _location(location)[0]},'
        f'"purchaseType":"{purchase_type}","customer":{customer},"version":{ticket_version}}},'
        f'"items":[{items}],"createdAt":{created_at},"updatedAt":{updated_at},'
        f'"version":{version},"rush":{rush},"allergenAcks":{acks},'
        f'"events":{_to_json(events, by_alias=True).decode() if events else "[]"},'
        f'"dueAt":{due_at},'
        f'"holds":{_to_json(holds, by_alias=True).decode() if holds else "[]"}{tail}',
        names,
        own,
    )


def _header(own: Own, order: Order) -> str:
    """The stored header from the order's own values (`_own`)."""
    (
        id_,
        number,
        pos_number,
        source,
        external_id,
        device_name,
        user,
        ticket_id,
        ticket_name,
        location,
        purchase_type,
        customer,
        ticket_version,
        created_at,
        updated_at,
        version,
        rush,
        acks,
        due_at,
    ) = own
    events, holds = order.events, order.holds
    return (
        f'{{"id":{id_},"number":{number},"pos_number":{pos_number},"source":{source},'
        f'"external_id":{external_id},"device_name":{device_name},"user":{user},'
        f'"ticket":{{"id":{ticket_id},"name":{ticket_name},'
        f'"location":{"null" if location is None else _location(location)[1]},'
        f'"purchase_type":"{purchase_type}","customer":{customer},'
        f'"version":{ticket_version}}},'
        f'"created_at":{created_at},"updated_at":{updated_at},"version":{version},'
        f'"rush":{rush},"allergen_acks":{acks},'
        f'"events":{_to_json(events, by_alias=False).decode() if events else "[]"},'
        f'"due_at":{due_at},'
        f'"holds":{_to_json(holds, by_alias=False).decode() if holds else "[]"}}}'
    )


def _item(
    item: OrderItem,
    dates: dict[int, str],
    histories: dict[tuple[int, ...], str],
    shape: list[str],
) -> str:
    endpoints = []
    for e in item.endpoints:
        name, status = e.name, e.status._value_
        shape.append(name)
        shape.append(status)
        changes = e.status_changes
        key = tuple(map(id, changes))
        history = histories.get(key)
        if history is None:
            history = histories[key] = ",".join(
                [
                    f'{{"status":"{c.status._value_}","date":{_date(c.date, dates)},'
                    f'"reason":{"null" if c.reason is None else encode_basestring(c.reason)}}}'
                    for c in changes
                ]
            )
        item_status, processed, processable = (
            e.order_item_status._value_,
            e.is_processed,
            e.is_processable,
        )
        around = _ENDPOINTS.get((name, status, item_status, processed, processable))
        if around is None:
            around = _endpoint(name, status, item_status, processed, processable)
        endpoints.append(f"{around[0]}{history}{around[1]}")
    # The shared product and quantity looked up here, not through a call each (per item).
    plu, quantity, comment, course = item.plu, item.quantity, item.comment, item.course_number
    modifiers, allergens = item.modifiers, item.allergens
    made_of = (id(plu), id(quantity), comment, course, tuple(modifiers), tuple(allergens))
    kept = _ITEMS.get(made_of)
    if kept is None or kept[0] is not plu or kept[1] is not quantity:
        kept = _item_parts(made_of, plu, quantity)
    return f'{{"id":{item.id},{kept[2]}{",".join(endpoints)}{kept[3]}'


def _endpoint(
    name: str, status: str, item_status: str, processed: bool, processable: bool
) -> tuple[str, str]:
    """An item endpoint's JSON before and after its status changes (kept: `_ENDPOINTS`)."""
    found = (
        f'{{"name":{encode_basestring(name)},"status":"{status}","statusChanges":[',
        f'],"orderItemStatus":"{item_status}",'
        f'"isProcessed":{"true" if processed else "false"},'
        f'"isProcessable":{"true" if processable else "false"}}}',
    )
    _remember(_ENDPOINTS, (name, status, item_status, processed, processable), found, _ITEMS_MAX)
    return found


def _item_parts(key: ItemKey, plu: Plu, quantity: Quantity) -> tuple[Plu, Quantity, str, str]:
    """An item's JSON after its id, before and after its item endpoints (kept: `_ITEMS`)."""
    _, _, comment, course, modifiers, allergens = key
    kept = _PARTS.get(id(plu))
    plu_json = kept[1] if kept is not None and kept[0] is plu else _plu(plu)
    kept = _PARTS.get(id(quantity))
    quantity_json = kept[1] if kept is not None and kept[0] is quantity else _quantity(quantity)
    found = (
        plu,
        quantity,
        f'"plu":{plu_json},"quantity":{quantity_json},'
        f'"comment":{"null" if comment is None else encode_basestring(comment)},'
        f'"courseNumber":{"null" if course is None else course},'
        f'"modifiers":{_text_list(list(modifiers))},"endpoints":[',
        f'],"allergens":{_text_list(list(allergens))}}}',
    )
    _remember(_ITEMS, key, found, _ITEMS_MAX)
    return found


def _derived(shape: tuple[str, ...]) -> tuple[str, frozenset[str]]:
    """The derived fields of an order whose item endpoints' names and statuses are `shape`
    (name, status, name, status, ...) and the closing brace, and the endpoints' names:
    computed once per shape."""
    found = _DERIVED.get(shape)
    if found is None:
        grouped: dict[str, set[OrderStatus]] = {}
        for name, value in zip(shape[::2], shape[1::2], strict=True):
            grouped.setdefault(name, set()).add(OrderStatus(value))
        every: set[OrderStatus] = set().union(*grouped.values())
        per_endpoint = ",".join(
            [
                f'{encode_basestring(name)}:"{summarize(list(statuses))._value_}"'
                for name, statuses in grouped.items()
            ]
        )
        found = (
            f',"status":"{summarize(list(every))._value_}",'
            f'"endpointStatuses":{{{per_endpoint}}},'
            f'"isProcessed":{"true" if every <= FINAL else "false"},'
            f'"isProcessable":{"false" if every.isdisjoint(PROCESSABLE) else "true"}}}',
            frozenset(grouped),
        )
        _remember(_DERIVED, shape, found, _DERIVED_MAX)
    return found


def _date(when: datetime, dates: dict[int, str]) -> str:
    found = dates.get(id(when))
    if found is None:
        found = dates[id(when)] = _to_json(when).decode()  # pydantic's own date format
    return found


def to_json(value: Any) -> bytes:
    """A free-form value as pydantic writes it in a model (NaN and infinities as null)."""
    return _to_json(value, inf_nan_mode="null")


def _text(text: str | None) -> str:
    return "null" if text is None else encode_basestring(text)


def _int(value: int | None) -> str:
    return "null" if value is None else str(value)


def _text_list(values: list[str]) -> str:
    if not values:
        return "[]"
    key = tuple(values)
    found = _TEXT_LISTS.get(key)
    if found is None:
        found = f"[{','.join([encode_basestring(v) for v in values])}]"
        _remember(_TEXT_LISTS, key, found, _PARTS_MAX)
    return found


def _plu(plu: Plu) -> str:
    """A product's JSON, kept for the object (`_item` looks it up first)."""
    code = plu.code
    found = (
        f'{{"name":{encode_basestring(plu.name)},'
        f'"code":{_text(code) if isinstance(code, str) or code is None else code},'
        f'"stockName":{_text(plu.stock_name)},"group":{_text(plu.group)}}}'
    )
    _keep(plu, found)
    return found


def _quantity(quantity: Quantity) -> str:
    """A quantity's JSON, kept for the object (`_item` looks it up first)."""
    amount = _decimal_to_json(quantity.amount)
    found = f'{{"amount":{amount!r},"unit":{encode_basestring(quantity.unit)}}}'
    _keep(quantity, found)
    return found


def _keep(part: object, encoded: str) -> None:
    _remember(_PARTS, id(part), (part, encoded), _PARTS_MAX)


K = TypeVar("K")
V = TypeVar("V")


def _remember(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Keep `value` in a bounded cache; a full one starts over, so it holds what comes now
    (a daemon runs for weeks: one-off comments and tables must not crowd out today's menu)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _location(location: Location) -> tuple[str, str]:
    """A table's JSON on the wire and in the stored header, kept for the object (shared:
    kds.interning)."""
    kept = _LOCATIONS.get(id(location))
    if kept is not None and kept[0] is location:
        return kept[1]
    zone, table = _text(location.zone_name), _text(location.table_name)
    found = (
        f'{{"zoneName":{zone},"tableName":{table}}}',
        f'{{"zone_name":{zone},"table_name":{table}}}',
    )
    _remember(_LOCATIONS, id(location), (location, found), _PARTS_MAX)
    return found
