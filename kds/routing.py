"""Which endpoints make an item (DESIGN §3).

The POS's own routing wins (items that arrive with endpoints); else the first
config rule that matches the product code, product group or name pattern;
else the default endpoint. An item is never dropped. A source whose POS nests
product groups passes the item's group and the groups it is inside, so a rule
on a parent group also matches its children.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Generic, TypeVar

import structlog

from .config import ProductMatch, RoutingConfig
from .model import OrderItemIn, Plu

log = structlog.get_logger(__name__)


R = TypeVar("R", bound=ProductMatch)

#: Products whose matching rule is remembered (forgotten all at once beyond this).
KNOWN_PRODUCTS = 10_000


class ProductMatcher(Generic[R]):
    """The first of some rules whose product code, group and name glob match a product."""

    def __init__(self, rules: Sequence[R]) -> None:
        self._rules = [(rule, self._pattern(rule)) for rule in rules]
        # A menu is a few hundred products, routed over and over: remember each one's rule.
        self._known: dict[tuple[object, ...], R | None] = {}

    @staticmethod
    def _pattern(rule: ProductMatch) -> re.Pattern[str] | None:
        # Glob patterns ("*pizza*"), matched case-insensitively: what an integrator types.
        if rule.name_pattern is None:
            return None
        return re.compile(fnmatch.translate(rule.name_pattern.casefold()))

    def first(self, plu: Plu, groups: Sequence[str] | None = None) -> R | None:
        """The first rule matching `plu`; `groups`: its group and the groups it is inside."""
        key = (plu.name, plu.code, plu.group, None if groups is None else tuple(groups))
        try:
            return self._known[key]
        except KeyError:
            pass
        if len(self._known) >= KNOWN_PRODUCTS:
            self._known.clear()  # bounded: POS text is untrusted, a flood must not grow it
        if groups is None:
            groups = [plu.group] if plu.group else []
        folded = {g.casefold() for g in groups}
        found = next(
            (rule for rule, pattern in self._rules if self._matches(rule, pattern, plu, folded)),
            None,
        )
        self._known[key] = found
        return found

    @staticmethod
    def _matches(
        rule: ProductMatch, pattern: re.Pattern[str] | None, plu: Plu, groups: set[str]
    ) -> bool:
        if rule.product_code is not None and str(rule.product_code) != str(plu.code):
            return False
        if rule.product_group is not None and rule.product_group.casefold() not in groups:
            return False
        return pattern is None or pattern.match(plu.name.casefold()) is not None


class Router:
    """Routes an incoming item to endpoint names."""

    def __init__(self, routing: RoutingConfig) -> None:
        assert routing.default_endpoint is not None
        self.default_endpoint = routing.default_endpoint
        self._rules = ProductMatcher(routing.rules)

    def route(self, item: OrderItemIn, groups: Sequence[str] | None = None) -> list[str]:
        """Endpoint names for `item`, in order, without repeats.

        `groups`: the item's product group followed by the groups it is inside
        (default: just `plu.group`).
        """
        if item.endpoints:
            return list(dict.fromkeys(e.name for e in item.endpoints))
        return self.product_endpoints(item.plu, groups)

    def product_endpoints(self, plu: Plu, groups: Sequence[str] | None = None) -> list[str]:
        """Endpoint names for an item of `plu` that names none itself (see `route`)."""
        rule = self._rules.first(plu, groups)
        return list(rule.endpoints) if rule is not None else [self.default_endpoint]
