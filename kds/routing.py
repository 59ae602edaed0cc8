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

import structlog

from .config import RoutingConfig, RoutingRule
from .model import OrderItemIn

log = structlog.get_logger(__name__)


class Router:
    """Routes an incoming item to endpoint names."""

    def __init__(self, routing: RoutingConfig) -> None:
        assert routing.default_endpoint is not None
        self.default_endpoint = routing.default_endpoint
        self._rules = [(rule, self._pattern(rule)) for rule in routing.rules]

    @staticmethod
    def _pattern(rule: RoutingRule) -> re.Pattern[str] | None:
        # Glob patterns ("*pizza*"), matched case-insensitively: what an integrator types.
        if rule.name_pattern is None:
            return None
        return re.compile(fnmatch.translate(rule.name_pattern.casefold()))

    def route(self, item: OrderItemIn, groups: Sequence[str] | None = None) -> list[str]:
        """Endpoint names for `item`, in order, without repeats.

        `groups`: the item's product group followed by the groups it is inside
        (default: just `plu.group`).
        """
        if item.endpoints:
            return list(dict.fromkeys(e.name for e in item.endpoints))
        if groups is None:
            groups = [item.plu.group] if item.plu.group else []
        folded = {g.casefold() for g in groups}
        for rule, pattern in self._rules:
            if self._matches(rule, pattern, item, folded):
                return list(rule.endpoints)
        return [self.default_endpoint]

    @staticmethod
    def _matches(
        rule: RoutingRule, pattern: re.Pattern[str] | None, item: OrderItemIn, groups: set[str]
    ) -> bool:
        plu = item.plu
        if rule.product_code is not None and str(rule.product_code) != str(plu.code):
            return False
        if rule.product_group is not None and rule.product_group.casefold() not in groups:
            return False
        return pattern is None or pattern.match(plu.name.casefold()) is not None
