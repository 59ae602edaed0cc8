"""The canonical order model, following the PORTOS Order models (seed 004).

Python speaks snake_case; the wire speaks PORTOS camelCase JSON
(`deviceName`, `courseNumber`, `statusChanges`, ...). Two families live here:

* the *input* models (`OrderIn`, `OrderItemIn`) validate what a POS or the
  native API sends: strict bounds, clear errors, POS text kept as plain text;
* the *stored* models (`Order`, `OrderItem`, `ItemEndpoint`) are kds's view of
  an order, built and changed only by the service core.

No I/O here.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .states import FINAL, PROCESSABLE, fast_value, summarize
from .states import OrderStatus as OrderStatus  # re-exported: most code imports it from here

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P")

MAX_ITEMS_PER_ORDER = 500
MAX_TEXT = 500
#: PORTOS Quantity has no documented maximum; a million of anything is not a kitchen order.
MAX_QUANTITY = 1_000_000
#: PORTOS `courseNumber` is an `int?` (.NET Int32).
MAX_COURSE = 2**31 - 1


@fast_value
class HoldReason(str, enum.Enum):
    """Why an item is held back from an endpoint (kds.pacing)."""

    SCHEDULED = "scheduled"  # the order is due later: waits for its endpoint's lead time
    COURSE = "course"  # a later course: waits until fired
    PREP = "prep"  # a quicker dish: waits so the order's dishes finish together


@fast_value
class PurchaseType(str, enum.Enum):
    """PORTOS PurchaseType (seed 004)."""

    UNKNOWN = "unknown"
    WALK_IN = "walkIn"
    TAKE_AWAY = "takeAway"
    DELIVERY = "delivery"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _decimal_to_json(value: Decimal) -> int | float:
    """Quantities go out as JSON numbers (PORTOS `decimal`), integers when whole."""
    return int(value) if value == value.to_integral_value() else float(value)


JsonDecimal = Annotated[Decimal, PlainSerializer(_decimal_to_json, when_used="json")]
#: Datetimes are kept in UTC; pydantic writes them as ISO 8601 with a `Z`.
JsonDatetime = datetime
Text = Annotated[str, Field(max_length=MAX_TEXT)]


MAX_FREE_DEPTH = 8


def _check_free(value: Any, level: int = 0) -> None:
    """Raise ValueError if a free-form JSON value nests too deeply or holds text
    that is not valid Unicode (an unpaired UTF-16 surrogate escape such as
    "\\ud800" decodes to a str that cannot be stored or sent as UTF-8)."""
    if isinstance(value, (dict, list)) and level >= MAX_FREE_DEPTH:
        raise ValueError(f"nested deeper than {MAX_FREE_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_free(item, level + 1)
    elif isinstance(value, list):
        for item in value:
            _check_free(item, level + 1)


def _check_text(text: str) -> None:
    if text.isascii():
        return  # most text: no surrogate possible
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"text with an unpaired UTF-16 surrogate at position {err.start}"
        ) from None


def _free_object(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form objects from a POS (customer, user): bounded nesting, valid text."""
    _check_free(value)
    return value


FreeObject = Annotated[dict[str, Any], AfterValidator(_free_object)]


def _json_integer(value: Any) -> Any:
    # pydantic would read true as 1 and "7" as 7; on the wire an integer is a JSON number.
    if isinstance(value, (bool, str)):
        raise ValueError("expected an integer")
    return value


#: Marks an integer field of POS input as a JSON integer (7 or 7.0), never true or "7". It
#: goes after the field's bounds, so they stay plain JSON Schema minimum/maximum.
JSON_INT = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JSON_INT]


def _or_integer(schema: dict[str, Any]) -> None:
    # Published schema of a text field that also takes an integer (kept as its text).
    schema["anyOf"] = [{"type": "integer"}, *schema["anyOf"]]


def _or_text(schema: dict[str, Any]) -> None:
    # A free-form object a POS may also send as plain text (a customer's name).
    schema["anyOf"] = [{"type": "string"}, *schema["anyOf"]]


def _or_name(schema: dict[str, Any]) -> None:
    # Endpoints may be given by name alone; modifiers as objects with a name.
    items = schema["items"]
    if "$ref" in items:
        schema["items"] = {"anyOf": [items, {"type": "string", "minLength": 1, "maxLength": 64}]}
    else:
        name = {"type": "object", "required": ["name"], "properties": {"name": dict(items)}}
        schema["items"] = {"anyOf": [items, name]}


def _date_text(value: Any) -> Any:
    # JSON has no dates: an ISO 8601 string, never a number pydantic would take as a timestamp.
    if value is not None and not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string with a time zone")
    return value


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A date-time a POS sends: ISO 8601 text with a zone, kept in UTC.
DateText = Annotated[AwareDatetime, BeforeValidator(_date_text), AfterValidator(_as_utc)]


class WireModel(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown keys ignored."""

    # Validators and serializers are built on first use: a start loads orders without them.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The PORTOS JSON shape of this model."""
        return self.model_dump(mode="json", by_alias=True)


def trusted(cls: type[P], **fields: Any) -> P:
    """Build a model or stored part from already-validated values (every field), unvalidated.

    pydantic's own `model_construct` spends most of its time on defaults and
    bookkeeping; loading 10,000 orders at start needs this to be cheap.
    """
    if not issubclass(cls, BaseModel):  # a slotted stored part (OrderItem, ItemEndpoint)
        obj = _new(cls)
        for name, value in fields.items():
            setattr(obj, name, value)
        return obj
    return from_fields(cls, fields)


#: pydantic 2's instance slots, written through their descriptors: a quarter of the time of
#: `object.__setattr__` by name (tests/test_model_trusted.py holds what this relies on).
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__
_new = object.__new__


def from_fields(cls: type[M], fields: dict[str, Any]) -> M:
    """`trusted(cls, **fields)` taking the dict itself (it becomes the model's `__dict__`)."""
    obj = _new(cls)
    _set_dict(obj, fields)
    shared = _SHARED.get(cls) or _shared(cls)
    # One set of every field name per class: pydantic only ever adds names that are
    # already in it, and a set per instance costs 216 bytes × 16 models × 10k orders.
    _set_fields_set(obj, shared[0])
    _set_extra(obj, None)
    _set_private(obj, None if shared[1] is None else shared[1].copy())
    return obj


def body_json(model: BaseModel) -> bytes:
    """`model.model_dump_json().encode()`, straight from pydantic's serializer (no str between)."""
    return model.__pydantic_serializer__.to_json(model)


_SHARED: dict[type, tuple[set[str], dict[str, Any] | None]] = {}


def _shared(cls: type[BaseModel]) -> tuple[set[str], dict[str, Any] | None]:
    """A class's set of field names and its private attributes' initial values (None: none)."""
    found = _SHARED[cls] = (
        set(cls.model_fields),
        {k: None for k in cls.__private_attributes__} or None,
    )
    return found


#: Compact JSON (`json.dumps` with these options builds an encoder per call; this runs per change).
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# --------------------------------------------------------------------------- shared parts


class Location(WireModel):
    """Where the ticket is served (PORTOS Location)."""

    zone_name: Text | None = None
    table_name: Text | None = None


class TicketInfo(WireModel):
    """PORTOS OrderTicketInfo: the POS ticket the order belongs to."""

    id: Text | None = Field(default=None, json_schema_extra=_or_integer)
    name: Text | None = Field(default=None, json_schema_extra=_or_integer)
    location: Location | None = None
    purchase_type: PurchaseType = PurchaseType.UNKNOWN
    customer: FreeObject | None = Field(default=None, json_schema_extra=_or_text)
    version: JsonInt | None = None

    @field_validator("id", "name", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("customer", mode="before")
    @classmethod
    def _customer_object(cls, value: Any) -> Any:
        # A POS may send just a name; keep it as an object so screens read one shape.
        return {"name": value} if isinstance(value, str) else value


class Plu(WireModel):
    """PORTOS OrderItemPlu, plus `group` (product group/category) for routing."""

    name: Text = ""
    # An integer code must fit SQLite's 64-bit INTEGER (the items table keeps it as sent).
    code: (
        Annotated[int, Field(ge=-(2**63), lt=2**63), JSON_INT]
        | Annotated[str, Field(max_length=64)]
        | None
    ) = None
    stock_name: Text | None = None
    group: Text | None = None


class Quantity(WireModel):
    """PORTOS Quantity: an amount with up to 3 decimals and a short unit.

    Large amounts are real (12 kg of beef sold in grams is 12000); the bound only
    keeps absurd values out.
    """

    amount: JsonDecimal = Field(gt=0, le=MAX_QUANTITY, max_digits=10, decimal_places=3)
    unit: Annotated[str, Field(max_length=8)] = "pcs"

    @field_validator("amount", mode="before")
    @classmethod
    def _no_bool_or_nan(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)):
            raise ValueError("amount must be a JSON number")
        if isinstance(value, float) and value != value:
            raise ValueError("amount must be a finite number")
        return value


@dataclass(slots=True)
class StatusChange:
    """PORTOS OrderItemEndpointStatusChange, plus why.

    The most numerous object kds keeps (several per item endpoint), so a slotted
    dataclass rather than a model; pydantic serializes it like one.
    """

    status: OrderStatus
    date: datetime
    reason: str | None = None


# --------------------------------------------------------------------------- input (from a POS)


class ItemEndpointIn(WireModel):
    """An endpoint named by the POS for an item, optionally with its status."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    status: OrderStatus | None = Field(
        default=None, validation_alias=AliasChoices("status", "orderItemStatus")
    )


class OrderItemIn(WireModel):
    """An order item as a POS sends it."""

    id: Annotated[int, Field(ge=0, le=2**31 - 1), JSON_INT] | None = None
    plu: Plu
    quantity: Quantity = Field(default_factory=lambda: Quantity(amount=Decimal(1)))
    comment: Text | None = None
    course_number: Annotated[int, Field(ge=0, le=MAX_COURSE), JSON_INT] | None = None
    modifiers: list[Text] = Field(default_factory=list, max_length=50, json_schema_extra=_or_name)
    endpoints: list[ItemEndpointIn] = Field(
        default_factory=list, max_length=20, json_schema_extra=_or_name
    )
    #: Allergens the POS flagged on the item (kds adds those its `[allergens]` keywords find).
    allergens: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("quantity", mode="before")
    @classmethod
    def _bare_quantity(cls, value: Any) -> Any:
        # `"quantity": 2` is accepted as shorthand for {"amount": 2}.
        if isinstance(value, (int, float, str, Decimal)) and not isinstance(value, bool):
            return {"amount": value}  # a text amount is refused there, naming `amount`
        return value

    @field_validator("modifiers", mode="before")
    @classmethod
    def _modifier_names(cls, value: Any) -> Any:
        # Modifiers may be plain names or objects like {"name": "no onion"}.
        if isinstance(value, list):
            return [m.get("name") if isinstance(m, dict) else m for m in value]
        return value

    @field_validator("endpoints", mode="before")
    @classmethod
    def _endpoint_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": e} if isinstance(e, str) else e for e in value]
        return value


class OrderIn(WireModel):
    """An order as a POS sends it: PORTOS Order JSON plus `source`.

    `id` is the POS's own id (kept as `external_id`); kds assigns its own.
    """

    id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, json_schema_extra=_or_integer
    )
    source: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")] = (
        "native"
    )
    number: Annotated[int, Field(ge=0, le=10**9), JSON_INT] | None = None
    device_name: Text | None = None
    user: Text | FreeObject | None = None
    ticket: TicketInfo = Field(default_factory=TicketInfo)
    items: list[OrderItemIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_ORDER)
    #: When the order is due (a pre-order): it reaches the stations its endpoint's lead time before.
    due_at: DateText | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_item_ids(self) -> OrderIn:
        ids = [item.id for item in self.items if item.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("item ids must be unique within an order")
        return self


# --------------------------------------------------------------------------- stored (kds's view)

_PROCESSED = OrderStatus.PROCESSED


#: The stored parts every order has several of (items, item endpoints) are slotted pydantic
#: dataclasses, not models: no `__dict__` per object (~280 bytes each, 6 an order and more),
#: built without validation by setting their slots; on the wire the same camelCase JSON.
_STORED_PART = ConfigDict(
    alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
)


@pydantic_dataclass(slots=True, config=_STORED_PART)
class ItemEndpoint:
    """PORTOS OrderItemEndpoint: one item at one endpoint, with its history.

    `order_item_status` (the seed's own name for `status`), `is_processed` and
    `is_processable` follow `status`; they are stored, not computed, because
    an order's JSON is encoded on every change and Python callbacks per field
    per item endpoint were a third of the cost. Change the status with
    `set_status()` (the service does) so they stay in step.
    """

    name: str
    status: OrderStatus
    status_changes: list[StatusChange] = Field(default_factory=list)
    order_item_status: OrderStatus = OrderStatus.UNKNOWN
    is_processed: bool = False
    is_processable: bool = False

    def __post_init__(self) -> None:
        # After validation (JSON of an archived order, a test's constructor call).
        self.set_status(self.status)

    def set_status(self, status: OrderStatus) -> None:
        """Set the status and the fields derived from it."""
        self.status = self.order_item_status = status
        self.is_processed = status is OrderStatus.PROCESSED
        self.is_processable = status in PROCESSABLE

    @classmethod
    def build(
        cls, name: str, status: OrderStatus, status_changes: list[StatusChange]
    ) -> ItemEndpoint:
        """An item endpoint from values kds made itself (no validation)."""
        obj = _new(cls)
        obj.name = name
        obj.status_changes = status_changes
        obj.status = obj.order_item_status = status
        obj.is_processed = status is _PROCESSED  # not read off the enum class per endpoint
        obj.is_processable = status in PROCESSABLE
        return obj


@pydantic_dataclass(slots=True, config=_STORED_PART)
class OrderItem:
    """PORTOS OrderItem as kds holds it."""

    id: int
    plu: Plu
    quantity: Quantity
    comment: str | None = None
    course_number: int | None = None
    modifiers: list[str] = Field(default_factory=list)
    endpoints: list[ItemEndpoint] = Field(default_factory=list)
    allergens: list[str] = Field(default_factory=list)  # kds.allergens: matched or POS-flagged

    def endpoint(self, name: str) -> ItemEndpoint | None:
        """This item's state at endpoint `name`, if it is routed there."""
        return next((e for e in self.endpoints if e.name == name), None)

    @classmethod
    def build(
        cls,
        item_id: int,
        plu: Plu,
        quantity: Quantity,
        comment: str | None,
        course_number: int | None,
        modifiers: list[str],
        endpoints: list[ItemEndpoint],
        allergens: list[str],
    ) -> OrderItem:
        """An item from values kds made itself (no validation)."""
        obj = _new(cls)
        obj.id = item_id
        obj.plu = plu
        obj.quantity = quantity
        obj.comment = comment
        obj.course_number = course_number
        obj.modifiers = modifiers
        obj.endpoints = endpoints
        obj.allergens = allergens
        return obj


class OrderEvent(WireModel):
    """An audited change of an order that is not a status: a rush, an allergen ack, a move."""

    type: str  # "rush" | "allergensAcknowledged" | "moved"
    date: JsonDatetime
    actor: str
    endpoint: str | None = None  # the station it happened at (ack, move: from)
    to: str | None = None  # move: the station that took the items


class Hold(WireModel):
    """An item held back from one endpoint: not yet shown as work there, not printed."""

    item_id: int
    endpoint: str
    reason: HoldReason
    course: int | None = None  # the item's course (for `reason` course)
    release_at: JsonDatetime | None = None  # None: until fired


class Order(WireModel):
    """A kitchen order: kds's stable `id` beside the POS's `source` + `external_id`."""

    id: str
    number: int  # kds's pickup number, unique among the orders that hold one (kds.numbers)
    pos_number: int | None = (
        None  # the number the POS gave the order, shown beside it for reference
    )
    source: str
    external_id: str
    device_name: str | None = None
    user: str | dict[str, Any] | None = None
    ticket: TicketInfo = Field(default_factory=TicketInfo)
    items: list[OrderItem] = Field(default_factory=list)
    created_at: JsonDatetime
    updated_at: JsonDatetime
    version: int = 1
    rush: bool = False  # rushed: first on every station, RUSH on screens and paper
    # Stations whose cook acknowledged the order's allergens (name → when): needed to accept.
    allergen_acks: dict[str, JsonDatetime] = Field(default_factory=dict)
    events: list[OrderEvent] = Field(default_factory=list)  # audit of rush, ack, move
    due_at: JsonDatetime | None = None  # a scheduled order's due time
    holds: list[Hold] = Field(default_factory=list)  # items not yet released (kds.pacing)

    # The wire JSON, encoded once per change and shared by the API and every screen: a slot,
    # not a pydantic private attribute (a dict per order, ~200 bytes, JSON kept or not).
    # Unset (built by pydantic's validation or copies) is nothing kept, as None is; kept is
    # (JSON, its endpoints' names or None where they were not found with it).
    __slots__ = ("_wire",)

    def item(self, item_id: int) -> OrderItem | None:
        """The item with `item_id`, if any."""
        return next((i for i in self.items if i.id == item_id), None)

    def hold(self, item_id: int, endpoint: str) -> Hold | None:
        """Why item `item_id` is held back from `endpoint`, if it is."""
        if not self.holds:
            return None
        return next(
            (h for h in self.holds if h.item_id == item_id and h.endpoint == endpoint), None
        )

    def item_endpoints(self, endpoint: str | None = None) -> list[ItemEndpoint]:
        """Every item endpoint of the order, or those at `endpoint`."""
        return [
            e for i in self.items for e in i.endpoints if endpoint is None or e.name == endpoint
        ]

    def endpoint_names(self) -> list[str]:
        """The endpoints this order is routed to, in first-seen order."""
        return list(dict.fromkeys(e.name for e in self.item_endpoints()))

    def status_at(self, endpoint: str | None = None) -> OrderStatus:
        """The order's status (at `endpoint`): its least advanced non-final item."""
        return summarize([e.status for e in self.item_endpoints(endpoint)])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> OrderStatus:
        """Least advanced status over all endpoints."""
        return self.status_at()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def endpoint_statuses(self) -> dict[str, OrderStatus]:
        """The order's status at each of its endpoints (one pass over the items)."""
        grouped: dict[str, list[OrderStatus]] = {}
        for item in self.items:
            for ep in item.endpoints:
                grouped.setdefault(ep.name, []).append(ep.status)
        return {name: summarize(statuses) for name, statuses in grouped.items()}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_processed(self) -> bool:
        """Every item endpoint is final."""
        return all(e.status in FINAL for e in self.item_endpoints())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_processable(self) -> bool:
        """Some item endpoint still has to be delivered."""
        return any(e.status in PROCESSABLE for e in self.item_endpoints())

    def wire_json(self, *, keep: bool = True) -> str:
        """PORTOS Order JSON plus kds's derived fields, encoded once per change.

        kds.wire writes it (pydantic, calling back into Python per computed field, costs
        more); pydantic writes it for a model kds.wire was not taught. With `keep=False` a
        JSON not already kept is made without keeping it (a snapshot of 10,000 orders must
        not pin 20 MB of text for good).
        """
        kept = self._kept_wire()
        if kept is None:
            encoded = (
                direct_json.wire_json(self)  # the same bytes, written out directly (kds.wire)
                if direct_json.MATCHES
                else self.__pydantic_serializer__.to_json(self, by_alias=True).decode()
            )
            if not keep:
                return encoded
            _set_wire(self, (encoded, None))
            return encoded
        return kept[0]

    def wire_event(self) -> tuple[str, frozenset[str]]:
        """`wire_json()` (kept) and the names of the endpoints the order's items are at (its
        event's `endpoints`): one pass over the items where neither is kept yet."""
        kept = self._kept_wire()
        if kept is None and direct_json.MATCHES:
            found = direct_json.wire_event(self)
            _set_wire(self, found)
            return found
        if kept is not None and kept[1] is not None:
            return kept[0], kept[1]
        encoded = self.wire_json() if kept is None else kept[0]
        return encoded, frozenset([e.name for i in self.items for e in i.endpoints])

    def keep_wire(self, encoded: str, names: frozenset[str]) -> None:
        """Keep `encoded` as the wire JSON of the order as it is now and `names` as its
        endpoints' (written by kds.wire from this order in the same pass as something else)."""
        _set_wire(self, (encoded, names))

    def _kept_wire(self) -> tuple[str, frozenset[str] | None] | None:
        """The wire JSON kept since the last change (and its endpoints' names, if found with
        it), or None."""
        try:
            kept: tuple[str, frozenset[str] | None] | None = _get_wire(self)  # no pydantic hooks
        except AttributeError:  # never set
            return None
        return kept

    def to_wire(self) -> dict[str, Any]:
        """The wire JSON as a dict."""
        wire: dict[str, Any] = json.loads(self.wire_json())
        return wire

    def changed(self) -> None:
        """Forget the encoded JSON after a change (the service calls it)."""
        _set_wire(self, None)


_get_wire = Order.__dict__["_wire"].__get__
_set_wire = Order.__dict__["_wire"].__set__

# Last: kds.wire reads the classes above (imported first itself, it finds them defined).
from . import wire as direct_json  # noqa: E402
