"""Orders as flat rows and back: the mapping every store backend shares.

An order is kept as a header (JSON of the order without items or derived
fields), one row per item and one per item endpoint, plus the audit rows of
its status changes: one for the order's creation (`CREATION_ITEM`), one per
change after it. An item endpoint's own steps at creation (created, then sent
to a screen, or skipped at an inactive station) are not rows of their own:
its `first_status` names them (`CREATION_PATHS`, migration 6). Rows read back were written by kds itself, so objects
are built without validation (`trusted`) and repeated text is shared.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import from_json

from .. import wire as direct_json
from ..interning import (
    EMPTY_DICT,
    EMPTY_LIST,
    shared,
    shared_location,
    shared_plu,
    shared_quantity,
    shared_ticket,
    shared_user,
)
from ..model import (
    Hold,
    ItemEndpoint,
    Order,
    OrderEvent,
    OrderItem,
    Plu,
    PurchaseType,
    Quantity,
    StatusChange,
    from_fields,
)
from ..states import OrderStatus

S = OrderStatus

_HEADER_EXCLUDE = {"items", "status", "endpoint_statuses", "is_processed", "is_processable"}
#: A stored status text → its OrderStatus (for loaders: a dict lookup, not the enum's __call__).
STATUS_BY_VALUE: dict[str, OrderStatus] = {s.value: s for s in OrderStatus}
_PURCHASE_TYPES: dict[str, PurchaseType] = {p.value: p for p in PurchaseType}


#: The item id of an order's creation row in status_changes (item ids are never negative).
CREATION_ITEM = -1
_CREATED = S.CREATED._value_
#: Why an item routed to an inactive station is skipped at once.
INACTIVE = "endpoint inactive"
#: An item endpoint's history at its order's creation, by the status it was created in
#: (every step dated at the creation): stored as `item_endpoints.first_status`.
CREATION_PATHS: dict[OrderStatus, tuple[tuple[OrderStatus, str | None], ...]] = {
    S.CREATED: ((S.CREATED, None),),
    S.SENT: ((S.CREATED, None), (S.SENT, None)),
    S.PROCESS_SKIPPED: ((S.CREATED, None), (S.PROCESS_SKIPPED, INACTIVE)),
}


def creation_history(status: OrderStatus, at: datetime) -> list[StatusChange]:
    """The history of an item endpoint created in `status` at `at` (a fresh list)."""
    return [StatusChange(s, at, reason) for s, reason in CREATION_PATHS[status]]


#: CREATION_PATHS by their length and last step (its status's text: an enum member hashes
#: through a Python call), with the stored text: only that path can match a history ending
#: so (`first_status` runs per new item endpoint).
_PATHS_BY_END: dict[
    tuple[int, str, str | None], tuple[str, tuple[tuple[OrderStatus, str | None], ...]]
] = {(len(p), p[-1][0]._value_, p[-1][1]): (s._value_, p[:-1]) for s, p in CREATION_PATHS.items()}


def first_status(endpoint: ItemEndpoint) -> str | None:
    """The `first_status` of a new order's item endpoint, or None when its history is not a
    creation path (then each step is written as a row of its own, as before migration 6)."""
    history = endpoint.status_changes
    if not history:
        return None
    last = history[-1]
    found = _PATHS_BY_END.get((len(history), last.status._value_, last.reason))
    if found is None:
        return None
    value, earlier = found
    for (status, reason), change in zip(earlier, history):
        if change.status is not status or change.reason != reason:
            return None
    return value


_UNSEEN = ""  # no first_status is empty text

#: One order's creation paths already built, by the status they end in (its item endpoints
#: share one creation time): `shared_creation_history`.
Steps = dict[OrderStatus, tuple[StatusChange, ...]]


def shared_creation_history(status: OrderStatus, at: datetime, steps: Steps) -> list[StatusChange]:
    """`creation_history(status, at)` as a list of its own whose StatusChanges are shared
    through `steps` by the item endpoints of one order (never mutated: a change appends a new
    one to the endpoint's own list), 2 objects an order instead of 2 per item endpoint."""
    path = steps.get(status)
    if path is None:
        path = steps[status] = tuple(creation_history(status, at))
    return list(path)


def creation_rows(order: Order, stamp: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A new order's item endpoint rows (order_id, item_id, endpoint, position, status,
    first_status) and audit rows (order_id, item_id, endpoint, status, date, actor, reason):
    its creation's, and one per step of an item endpoint whose history is no creation path.
    `stamp`: the creation time as the backend stores it (every first step is dated there)."""
    order_id = order.id  # an order's attributes cost more to read than a local (pydantic)
    endpoints = []
    audit: list[tuple[Any, ...]] = [(order_id, CREATION_ITEM, "", _CREATED, stamp, "kds", None)]
    # first_status by the steps of a history: a new order's item endpoints share their
    # creation steps (`shared_creation_history`), the order holds them while this runs.
    firsts: dict[tuple[int, ...], str | None] = {}
    for item in order.items:
        item_id = item.id
        for position, e in enumerate(item.endpoints):
            key = tuple(map(id, e.status_changes))
            first = firsts.get(key, _UNSEEN)
            if first is _UNSEEN:
                first = firsts[key] = first_status(e)
            # `_value_`, not `value`: the enum's property is a Python call (3.11), per row.
            endpoints.append((order_id, item_id, e.name, position, e.status._value_, first))
            if first is None:
                audit += [
                    (order_id, item_id, e.name, c.status._value_, stamp, "kds", c.reason)
                    for c in e.status_changes
                ]
    return endpoints, audit


def header_json(order: Order) -> str:
    """The order without its items (they have rows of their own) or derived fields."""
    if direct_json.MATCHES:  # written out (kds.wire: pydantic's bytes at a third of the cost)
        return direct_json.header_json(order)
    # The serializer itself: model_dump_json's wrapper costs a fifth of this small document.
    return order.__pydantic_serializer__.to_json(order, exclude=_HEADER_EXCLUDE).decode()


def new_order_header(order: Order) -> tuple[str, str]:
    """A new order's header (`header_json`) and its `created_at` as ISO text (the stamp its
    rows are written with). Its wire JSON, written in the same pass from the same values, is
    kept on the order for the event that follows its commit."""
    if not direct_json.MATCHES:
        return header_json(order), order.created_at.isoformat()
    wire, names, header, created = direct_json.wire_event_and_header(order)
    order.keep_wire(wire, names)
    return header, created


#: The values of a header (`header_json`) the loaders read, in this order: the database picks
#: them out as one JSON array (`sqlite_header_values`; `header_values` where it does not),
#: cheaper to parse than the header and read by unpacking (`order_from_values`). A value a
#: header lacks (written by an older kds) is null, which means the field's default.
HEADER_PATHS = (
    ("id",),
    ("number",),
    ("pos_number",),
    ("source",),
    ("external_id",),
    ("device_name",),
    ("user",),
    ("ticket", "id"),
    ("ticket", "name"),
    ("ticket", "location"),
    ("ticket", "purchase_type"),
    ("ticket", "customer"),
    ("ticket", "version"),
    ("created_at",),
    ("version",),
    ("rush",),
    ("allergen_acks",),
    ("events",),
    ("due_at",),
    ("holds",),
)


#: Where `created_at` is among the `HEADER_PATHS` values.
CREATED_AT = HEADER_PATHS.index(("created_at",))


def sqlite_header_values(column: str) -> str:
    """SQL (SQLite) of the `HEADER_PATHS` values of the header JSON in `column`, a JSON array."""
    return f"json_extract({column}, {', '.join(repr('$.' + '.'.join(p)) for p in HEADER_PATHS)})"


def header_values(data: str) -> list[Any]:
    """The `HEADER_PATHS` values of a header JSON, picked out here (where the database does
    not: PostgreSQL keeps it as text, and its json operators would parse it once per path)."""
    header = from_json(data)
    ticket = header["ticket"]
    return [(ticket if len(p) == 2 else header).get(p[-1]) for p in HEADER_PATHS]


def item_row(order_id: str, position: int, item: OrderItem) -> tuple[Any, ...]:
    """An item as a row: order_id, item_id, position, plu_name, plu_code, plu_stock_name,
    plu_group, amount, unit, comment, course_number, modifiers, allergens (its endpoints
    have rows of their own)."""
    plu, quantity = item.plu, item.quantity
    found = _PRODUCT_COLUMNS.get((id(plu), id(quantity)))
    if found is None or found[0] is not plu or found[1] is not quantity:
        found = _product_columns(plu, quantity)
    _, _, name, code, stock_name, group, amount, unit = found
    return (
        order_id,
        item.id,
        position,
        name,
        code,
        stock_name,
        group,
        amount,
        unit,
        item.comment,
        item.course_number,
        _text_list(item.modifiers),
        _text_list(item.allergens),
    )


#: An item's product and quantity columns by the ids of its `Plu` and `Quantity` (shared by
#: the orders of a menu and never changed: `kds.interning`), each with the two objects, so an
#: id that came back for another object is not taken for theirs. Bounded.
_PRODUCT_COLUMNS: dict[tuple[int, int], tuple[Any, ...]] = {}
_PRODUCT_COLUMNS_MAX = 4096


def _product_columns(plu: Plu, quantity: Quantity) -> tuple[Any, ...]:
    """(plu, quantity, plu_name, plu_code, plu_stock_name, plu_group, amount, unit)."""
    found = (
        plu,
        quantity,
        plu.name,
        plu.code,
        plu.stock_name,
        plu.group,
        str(quantity.amount),
        quantity.unit,
    )
    if len(_PRODUCT_COLUMNS) < _PRODUCT_COLUMNS_MAX:
        _PRODUCT_COLUMNS[(id(plu), id(quantity))] = found
    return found


#: `json.dumps(..., ensure_ascii=False)` without building an encoder per call (two per item).
_encode = json.JSONEncoder(ensure_ascii=False).encode


#: Lists of text already encoded (modifier lists repeat as menus do); bounded.
_TEXT_JSON: dict[tuple[str, ...], str] = {}
_TEXT_JSON_MAX = 4096


def _text_list(values: list[str]) -> str:
    """A list of text as the JSON the items table holds (most are empty)."""
    if not values:
        return "[]"
    key = tuple(values)
    found = _TEXT_JSON.get(key)
    if found is None:
        found = _encode(values)
        if len(_TEXT_JSON) < _TEXT_JSON_MAX:
            _TEXT_JSON[key] = found
    return found


#: The columns of an item and of one of its item endpoints that the loaders read as one JSON
#: array (SQLite's `json_array`, PostgreSQL's `json_build_array`): one value to convert per
#: item endpoint instead of fourteen, and the text is the key of what they give (`row_parts`).
ROW_PART_COLUMNS = (
    "i.item_id, i.plu_name, i.plu_code, i.plu_stock_name, i.plu_group, i.amount, i.unit,"
    " i.comment, i.course_number, i.modifiers, i.allergens, e.endpoint, e.status, e.first_status"
)

#: What a `ROW_PART_COLUMNS` array gives: the item's id, plu, quantity, comment, course number,
#: modifiers and allergens (shared: copy before keeping), the item endpoint's name, status and
#: first status (None for an item routed nowhere).
RowParts = tuple[
    int,
    Plu,
    Quantity,
    str | None,
    int | None,
    list[str],
    list[str],
    str | None,
    OrderStatus | None,
    OrderStatus | None,
]
#: `ROW_PART_COLUMNS` arrays already read: orders repeat a menu's dishes at a few stations
#: (and their item ids count from 1), so most item endpoints are one dict lookup. Bounded.
_ROW_PARTS: dict[str, RowParts] = {}
_ROW_PARTS_MAX = 4096


def row_parts(text: str) -> RowParts:
    """The parts of a `ROW_PART_COLUMNS` array, for rows kds wrote itself."""
    found = _ROW_PARTS.get(text)
    if found is None:
        item_id, name, code, stock, group, amount, unit, comment, course, *rest = from_json(text)
        modifiers, allergens, endpoint, status, first = rest
        found = (
            item_id,
            shared_plu(name, code, stock, group),
            shared_quantity(amount, unit),
            shared(comment),
            course,
            _texts(modifiers),
            _texts(allergens),
            None if endpoint is None else sys.intern(endpoint),
            None if status is None else STATUS_BY_VALUE[status],
            None if first is None else STATUS_BY_VALUE[first],
        )
        if len(_ROW_PARTS) < _ROW_PARTS_MAX:
            _ROW_PARTS[text] = found
    return found


#: What a loader reads per order: id, body hash, its header's values (`HEADER_PATHS`, parsed), updated_at, and
#: the `ROW_PART_COLUMNS` arrays of its items joined with their item endpoints (one per item
#: endpoint, one per item routed nowhere), by item position and endpoint position.
OrderRecord = tuple[str, str, list[Any], "str | datetime", Sequence[str]]
#: The status changes after creation, by (order, item, endpoint).
History = dict[tuple[str, int, str], list[StatusChange]]


def history_from_rows(
    rows: Iterable[Sequence[Any]], dates: dict[str, datetime] | None = None
) -> History:
    """Status changes after creation (most open orders have none) from rows (order_id,
    item_id, endpoint, status, date, reason), by order and id."""
    # Statuses by dict lookup: OrderStatus(value) through the enum's __call__ costs more.
    status_of = STATUS_BY_VALUE
    history: History = {}
    for order_id, item_id, endpoint, status, date, reason in rows:
        change = StatusChange(status_of[status], shared_date(date, dates), reason)
        key = (order_id, item_id, endpoint)
        found = history.get(key)
        if found is None:
            history[key] = [change]
        else:
            found.append(change)
    return history


def orders_from_records(
    records: Iterable[OrderRecord], history: History, dates: dict[str, datetime] | None = None
) -> list[tuple[Order, str]]:
    """(order, body hash) from what a loader read (either backend), in one pass.

    `history`: `history_from_rows` of these orders. `dates`: parsed stamps to share (the
    creation row's date is the header's `created_at`: both are written from one stamp)."""
    if dates is None:
        dates = {}
    built: list[tuple[Order, str]] = []
    append = built.append
    build, build_item = ItemEndpoint.build, OrderItem.build
    known = _ROW_PARTS.get
    for order_id, body_hash, values, updated_at, parts in records:
        created = values[CREATED_AT]
        at = datetime.fromisoformat(created)
        # Status changes touch only the updated_at column, not the header.
        updated = _updated(updated_at, created, at, dates)
        items: list[OrderItem] = []
        steps: Steps = {}  # the creation paths of this order's item endpoints
        endpoints: list[ItemEndpoint] = []
        last_item = None
        for text in parts:
            (
                item_id,
                plu,
                quantity,
                comment,
                course,
                modifiers,
                allergens,
                endpoint,
                status,
                first,
            ) = known(text) or row_parts(text)
            if item_id != last_item:
                last_item = item_id
                endpoints = []
                items.append(
                    build_item(
                        item_id,
                        plu,
                        quantity,
                        comment,
                        course,
                        # The item's own lists (a shared empty one refuses changes).
                        modifiers[:] if modifiers else EMPTY_LIST,
                        endpoints,
                        allergens[:] if allergens else EMPTY_LIST,
                    )
                )
            if endpoint is None:
                continue  # an item routed nowhere (LEFT JOIN)
            assert status is not None
            later = history.get((order_id, item_id, endpoint)) if history else None
            if first is None:  # each step has a row (written before migration 6)
                changes = later or []
            else:
                changes = shared_creation_history(first, at, steps)
                if later:
                    changes += later
            endpoints.append(build(endpoint, status, changes))
        append((order_from_values(values, items, at, updated), body_hash))
    return built


def orders_from_rows(
    rows: Iterable[Sequence[Any]],
    history_rows: Iterable[Sequence[Any]],
    item_rows: Iterable[Sequence[Any]],
    dates: dict[str, datetime] | None = None,
) -> list[tuple[Order, str]]:
    """`orders_from_records` from rows: orders (id, body_hash, header JSON, updated_at), their
    status changes after creation (`history_from_rows`) and their items joined with their item
    endpoints (order_id, `ROW_PART_COLUMNS` array; by order, item and endpoint position)."""
    parts: dict[str, list[str]] = {}
    for order_id, text in item_rows:
        found = parts.get(order_id)
        if found is None:
            parts[order_id] = [text]
        else:
            found.append(text)
    history = history_from_rows(history_rows, dates)
    records = (
        (order_id, body_hash, header_values(data), updated_at, parts.get(order_id, ()))
        for order_id, body_hash, data, updated_at in rows
    )
    return orders_from_records(records, history, dates)


#: Stored lists of text already read (modifiers repeat across orders as menus do); bounded.
_TEXT_LISTS: dict[str, list[str]] = {}
_TEXT_LISTS_MAX = 4096


def _texts(stored: str) -> list[str]:
    """A stored JSON list of text (shared text; not to be changed: callers copy it)."""
    if stored == "[]":
        return EMPTY_LIST
    found = _TEXT_LISTS.get(stored)
    if found is None:
        found = [shared(t) for t in json.loads(stored)]
        if len(_TEXT_LISTS) < _TEXT_LISTS_MAX:
            _TEXT_LISTS[stored] = found
    return found


def shared_date(text: str | datetime, dates: dict[str, datetime] | None) -> datetime:
    """`text` parsed, one object per instant in `dates` (an order's stamps repeat in its
    history); a datetime already (PostgreSQL's columns) as it is."""
    if not isinstance(text, str):
        return text
    if dates is None:
        return datetime.fromisoformat(text)
    key = text[:-1] + "+00:00" if text.endswith("Z") else text  # the header's and the rows' form
    found = dates.get(key)
    if found is None:
        found = dates[key] = datetime.fromisoformat(text)
    return found


def _updated(
    stamp: str | datetime, created: str, at: datetime, dates: dict[str, datetime]
) -> datetime:
    """An order's `updated_at`: its `created_at` object when it is that instant (not changed
    since: most open orders), else one object per instant in `dates` (its last change's)."""
    if isinstance(stamp, str):
        # The column's form is isoformat()'s ("+00:00"), the header's pydantic's ("Z").
        if stamp[:-6] == created[:-1] and stamp.endswith("+00:00") and created.endswith("Z"):
            return at
        return shared_date(stamp, dates)
    return at if stamp == at else stamp  # PostgreSQL: a datetime


def order_from_values(
    values: list[Any], items: list[OrderItem], created_at: datetime, updated_at: datetime
) -> Order:
    """The inverse of `header_json` from its `HEADER_PATHS` values, for rows kds wrote itself
    (the dates parsed, shared)."""
    (
        order_id,
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
        _,
        version,
        rush,
        acks,
        events,
        due_at,
        holds,
    ) = values
    return from_fields(
        Order,
        {
            "id": order_id,
            "number": number,
            "pos_number": pos_number,
            "source": shared(source),
            "external_id": external_id,
            "device_name": shared(device_name),
            "user": shared_user(user),
            "ticket": shared_ticket(
                ticket_id,
                ticket_name,
                None
                if location is None
                else shared_location(location["zone_name"], location["table_name"]),
                _PURCHASE_TYPES[purchase_type],
                customer,
                ticket_version,
            ),
            "items": items,
            "created_at": created_at,
            "updated_at": updated_at,
            "version": version,
            "rush": rush or False,  # null: a header from before rushes
            "allergen_acks": {name: datetime.fromisoformat(d) for name, d in acks.items()}
            if acks
            else EMPTY_DICT,
            "events": [OrderEvent.model_validate(e) for e in events] if events else EMPTY_LIST,
            "due_at": None if due_at is None else datetime.fromisoformat(due_at),
            "holds": [Hold.model_validate(h) for h in holds] if holds else EMPTY_LIST,
        },
    )
