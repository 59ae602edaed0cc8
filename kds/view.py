"""The live view: every order not yet archived, in memory, as screens and the API read it.

Only the service core changes it, and only after the change was committed.
Memory is kept flat for weeks of uptime: repeated text is shared (see
`kds.interning`), the encoded JSON is kept only for the most recently changed
orders, and archived orders are remembered as a set of hashes, not objects.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable, Iterator

from .model import Order
from .states import FINAL
from .store import OrderStore

#: Orders whose encoded JSON stays cached (the busiest ones: a change re-encodes anyway).
#: A change's answer reuses its JSON before any other change can evict it, and the bus's
#: history keeps the events' bytes: more only holds ~2 KB an order twice (1,000 was ~2 MB).
KEEP_JSON = 100


def all_final(order: Order) -> bool:
    """Whether every item endpoint of `order` is final (the order is done)."""
    # Plain loops, no list of endpoints: a start runs this twice per loaded order (the load,
    # for the open count and pickup numbers; the archiver's first pass).
    for item in order.items:
        for e in item.endpoints:
            if e.status not in FINAL:
                return False
    return True


class OrderView:
    """Live orders by id and by (source, external_id), with their body hashes."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._hashes: dict[str, str] = {}
        # Order ids by source, then external id: no (source, external_id) tuple kept per order.
        self._by_external: dict[str, dict[str, str]] = {}
        # hash() of archived (source, external_id) keys: a repeat of an archived order
        # is found without a database read per new order (a hit is confirmed in the DB).
        self._archived: set[int] = set()
        self._recent_json: OrderedDict[str, Order] = OrderedDict()
        # Open orders, counted again only after a change: /readyz and /metrics ask often, and a
        # walk over 50,000 orders is a third of a second on the loop.
        self._open: int | None = None

    async def load(
        self, store: OrderStore, loaded: Callable[[Order, bool], None] | None = None
    ) -> None:
        """Fill the view from the store (at start), counting the open orders.

        `loaded(order, finished)` is called for each order: one look at its item endpoints
        serves the count and the caller (pickup numbers), not one each.
        """
        # Nothing the loader allocates is garbage: collecting while it reads and builds
        # the orders is pure cost (a third of the CPU of a restart). The daemon keeps it off
        # until every component has started (kds.app), so only a caller's own state is restored.
        enabled = gc.isenabled()
        gc.disable()
        open_orders = 0
        try:
            for order, body_hash in await store.load_orders():
                self.remember(order, body_hash)
                finished = all_final(order)
                open_orders += not finished
                if loaded is not None:
                    loaded(order, finished)
        finally:
            if enabled:
                gc.enable()
        self._open = open_orders
        for key in await store.archived_keys():
            self._archived.add(hash(key))

    def __len__(self) -> int:
        return len(self._orders)

    def remember(self, order: Order, body_hash: str) -> None:
        """Add (or replace) an order."""
        self._orders[order.id] = order
        self._hashes[order.id] = body_hash
        self._open = None
        by_source = self._by_external.get(order.source)
        if by_source is None:
            by_source = self._by_external[order.source] = {}
        by_source[order.external_id] = order.id

    def forget(self, order: Order) -> None:
        """Drop an order (archived); a repeat of it is then looked up in the archive."""
        self._recent_json.pop(order.id, None)
        self._orders.pop(order.id, None)
        self._open = None
        self._hashes.pop(order.id, None)
        self._by_external.get(order.source, {}).pop(order.external_id, None)
        self._archived.add(hash((order.source, order.external_id)))

    def get(self, order_id: str) -> Order | None:
        """An order of the live view (open or recently finished)."""
        return self._orders.get(order_id)

    def find(self, source: str, external_id: str) -> Order | None:
        """The live order a POS knows as `external_id`."""
        order_id = self._by_external.get(source, {}).get(external_id)
        return None if order_id is None else self._orders.get(order_id)

    def body_hash(self, order_id: str) -> str:
        """The hash of the body the order was ingested with."""
        return self._hashes[order_id]

    def maybe_archived(self, source: str, external_id: str) -> bool:
        """False when the order was surely never archived (True: ask the store)."""
        return hash((source, external_id)) in self._archived

    def orders(self) -> Iterator[Order]:
        """Every order of the live view, oldest first (a copy: safe while orders change)."""
        return iter(list(self._orders.values()))

    def count_open(self) -> int:
        """Orders with an item endpoint not final."""
        if self._open is None:
            self._open = sum(1 for o in self._orders.values() if not all_final(o))
        return self._open

    def keep_json(self, order: Order) -> None:
        """Keep the encoded JSON of the most recently changed orders only (memory stays flat).

        The service calls it for every published change, so the open count is redone too.
        """
        self._open = None
        recent = self._recent_json
        recent[order.id] = order
        recent.move_to_end(order.id)
        while len(recent) > KEEP_JSON:
            _, old = recent.popitem(last=False)
            old.changed()
