"""`model.trusted()` builds stored models without validation by writing pydantic 2's
instance slots; these tests hold what it relies on, so a pydantic upgrade that changes
them fails here rather than corrupting orders (pyproject pins pydantic <3 for it)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from kds.model import (
    Hold,
    HoldReason,
    ItemEndpoint,
    Location,
    Order,
    OrderIn,
    OrderItem,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    StatusChange,
    TicketInfo,
    body_json,
    trusted,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _built() -> Order:
    ep = ItemEndpoint.build(
        "grill",
        OrderStatus.SENT,
        [StatusChange(OrderStatus.CREATED, NOW), StatusChange(OrderStatus.SENT, NOW)],
    )
    item = trusted(
        OrderItem,
        id=1,
        plu=trusted(Plu, name="Burger", code=7, stock_name=None, group="Food"),
        quantity=trusted(Quantity, amount=Decimal("1.5"), unit="kg"),
        comment="no onion",
        course_number=2,
        modifiers=["extra cheese"],
        endpoints=[ep],
        allergens=["milk"],
    )
    return trusted(
        Order,
        id="o1",
        number=5,
        pos_number=None,
        source="native",
        external_id="e1",
        device_name="POS1",
        user=None,
        ticket=trusted(
            TicketInfo,
            id="t1",
            name="Table 5",
            location=trusted(Location, zone_name="Terrace", table_name="5"),
            purchase_type=PurchaseType.WALK_IN,
            customer=None,
            version=None,
        ),
        items=[item],
        created_at=NOW,
        updated_at=NOW,
        version=1,
        rush=True,
        allergen_acks={"grill": NOW},
        events=[],
        due_at=NOW,
        holds=[
            trusted(
                Hold,
                item_id=1,
                endpoint="grill",
                reason=HoldReason.PREP,
                course=2,
                release_at=NOW,
            )
        ],
    )


def test_a_trusted_order_is_the_order_validation_would_build() -> None:
    built = _built()
    validated = Order.model_validate_json(built.model_dump_json())
    assert built.model_dump() == validated.model_dump()
    assert built.wire_json() == validated.wire_json()


def test_trusted_models_behave_like_validated_ones() -> None:
    # copy, equality and private state all go through the slots trusted() fills.
    built = _built()
    moved = built.model_copy(update={"version": 2})
    assert moved.version == 2 and built.version == 1
    assert built == Order.model_validate_json(built.model_dump_json())
    built.changed()  # the private JSON cache exists
    assert built.wire_json() == built.wire_json()


def test_an_orders_body_hash_is_over_the_bytes_kds_always_hashed() -> None:
    # Stored body hashes tell a repeat (200) from a conflict (409); `body_json` must give the
    # bytes of `model_dump_json()` that hashes were made of, or a retry after an upgrade is a 409.
    order_in = OrderIn.model_validate(
        {
            "id": 'ü"1',
            "items": [{"plu": {"name": "Борщ \\ \u2028", "code": 7}, "quantity": 1.5}],
            "user": {"userName": "anna", "scores": [1, 2.5, None]},
            "ticket": {"customer": "Eva", "location": {"tableName": "5"}},
            "dueAt": "2026-01-01T10:00:00+01:00",
        }
    )
    assert body_json(order_in) == order_in.model_dump_json().encode()


def test_body_hashes_stay_those_stored_before() -> None:
    # A hash taken by an earlier kds (0963999) of a body with every field and many amounts:
    # whatever makes `body_json` cheaper must give these bytes, or a POS retry after an
    # upgrade is answered 409 instead of 200.
    amounts = [1, 2, 1.5, 0.001, 0.5, 999999.999, 1000000, 2.000, 12000, 1e2, 3.25, 7.1]
    body = {
        "id": "golden-1",
        "source": "native",
        "number": 42,
        "deviceName": "POS1",
        "user": {"userName": "anna"},
        "ticket": {
            "id": "T-1",
            "name": "Table 5",
            "location": {"zoneName": "Terrace", "tableName": "5"},
            "purchaseType": "walkIn",
            "customer": {"name": "Eva", "vip": True},
            "version": 3,
        },
        "items": [
            {
                "id": i + 1,
                "plu": {"name": f"Dish {i}", "code": 100 + i, "group": "Food"},
                "quantity": {"amount": a, "unit": "kg" if i % 2 else "pcs"},
                "comment": 'ü \u2028 "q"',
                "courseNumber": i % 3,
                "modifiers": ["no onion"],
                "endpoints": ["grill"],
                "allergens": ["nuts"],
            }
            for i, a in enumerate(amounts)
        ],
        "dueAt": "2026-01-01T10:00:00+01:00",
    }
    order_in = OrderIn.model_validate_json(json.dumps(body))
    assert (
        hashlib.sha256(body_json(order_in)).hexdigest()
        == "56cd64e2094c25feba36ebd782203d94ddea535d76c4c02de999447e597bb7e1"
    )
