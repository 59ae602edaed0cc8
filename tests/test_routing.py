"""Routing an item: POS endpoints, then the first matching rule, then the default endpoint."""

from __future__ import annotations

from kds.config import RoutingConfig, RoutingRule
from kds.model import OrderItemIn, Plu
from kds.routing import Router

RULES = RoutingConfig(
    default_endpoint="grill",
    rules=[
        RoutingRule(product_group="Drinks", endpoint="bar"),
        RoutingRule(name_pattern="*salad*", endpoint="cold"),
        RoutingRule(product_code=7, endpoint="pastry"),
    ],
)


def _item(**plu: object) -> OrderItemIn:
    return OrderItemIn(plu=Plu.model_validate(plu))


def test_the_same_product_is_routed_the_same_every_time() -> None:
    router = Router(RULES)
    for _ in range(3):  # routes are remembered per product: the second answer is the first's
        assert router.route(_item(name="Cola", group="Drinks")) == ["bar"]
        assert router.route(_item(name="Caesar Salad")) == ["cold"]
        assert router.route(_item(name="Steak")) == ["grill"]


def test_a_remembered_route_tells_apart_everything_a_rule_looks_at() -> None:
    # Same name, other group / code / parent groups: each is routed on its own facts.
    router = Router(RULES)
    assert router.route(_item(name="Cola", group="Drinks")) == ["bar"]
    assert router.route(_item(name="Cola")) == ["grill"]
    assert router.route(_item(name="Cola", group="Food")) == ["grill"]
    assert router.route(_item(name="Cola", group="Food"), ["Food", "Drinks"]) == ["bar"]
    assert router.route(_item(name="Cola", code=7)) == ["pastry"]
    assert router.route(_item(name="Cola", code="7")) == ["pastry"]
    assert router.route(_item(name="Cola", code=8)) == ["grill"]


def test_an_answer_can_be_changed_by_the_caller_without_changing_the_next() -> None:
    router = Router(RULES)
    first = router.route(_item(name="Cola", group="Drinks"))
    first.append("expo")
    assert router.route(_item(name="Cola", group="Drinks")) == ["bar"]
