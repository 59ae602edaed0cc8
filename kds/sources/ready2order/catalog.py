"""What kds knows of a ready2order account's catalogue: products, product groups, tables.

Order rows (seed 001) name a `product_id` and a `table_id`, nothing more: an
item's product group, the groups that group is inside (`productgroup_parent`)
and a table's name all come from the catalogue. It is read whole in the
background (`refresh`, every `catalog_refresh`, at the rate limiter's
background priority, so it never holds up an order fetch) and kept current by
product and product-group webhooks. An item whose product, group or table kds
has not seen yet is looked up by id (`ensure`) before it is routed, at the
order fetch's priority: one request, not a whole catalogue read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from ..base import SourceUnavailable
from ..coerce import as_int

if TYPE_CHECKING:
    from .client import Ready2OrderClient

log = structlog.get_logger(__name__)

MAX_DEPTH = 10  # product groups nested deeper than this are not followed (and a cycle ends)


@dataclass
class Product:
    """The catalogue facts kds uses for a product."""

    group_id: int | None
    itemnumber: Any
    name: str | None


class Catalogue:
    """Products, product groups (with their parents) and table names of one account."""

    def __init__(self, client: Ready2OrderClient) -> None:
        self.client = client
        self.products: dict[int, Product] = {}
        self.groups: dict[int, str] = {}
        self.parents: dict[int, int | None] = {}  # known once the group's own row was read
        self.tables: dict[int, str] = {}
        self.loaded = False

    # ------------------------------------------------------------------ reading rows

    def remember_product(self, row: dict[str, Any]) -> None:
        """A product row (list, by id, or a webhook's full object)."""
        pid = as_int(row.get("product_id"))
        if pid is None:
            return
        group = row.get("productgroup") if isinstance(row.get("productgroup"), dict) else {}
        gid = as_int(row.get("productgroup_id")) or as_int(group.get("productgroup_id"))
        if gid is not None and group.get("productgroup_name"):
            self.groups[gid] = str(group["productgroup_name"])
        name = row.get("product_name")
        self.products[pid] = Product(
            gid, row.get("product_itemnumber"), str(name) if name is not None else None
        )

    def remember_group(self, row: dict[str, Any]) -> None:
        """A product group row: its name and its parent (`productgroup_parent`, absent: none)."""
        gid = as_int(row.get("productgroup_id"))
        if gid is None:
            return
        if row.get("productgroup_name"):
            self.groups[gid] = str(row["productgroup_name"])
        self.parents[gid] = as_int(row.get("productgroup_parent"))

    def remember_table(self, row: dict[str, Any]) -> None:
        """A table row."""
        tid = as_int(row.get("table_id"))
        if tid is not None and row.get("table_name") is not None:
            self.tables[tid] = str(row["table_name"])

    def apply_event(self, name: str, objects: list[dict[str, Any]], ids: list[int]) -> None:
        """A product or productGroup webhook."""
        deleted = name.endswith("deleted")
        for obj in objects:
            if name.startswith("productGroup."):
                gid = as_int(obj.get("productgroup_id"))
                if gid is not None and deleted:
                    self.groups.pop(gid, None)
                    self.parents.pop(gid, None)
                elif gid is not None:
                    self.remember_group(obj)
            elif deleted:
                self.products.pop(as_int(obj.get("product_id")) or -1, None)
            else:
                self.remember_product(obj)
        if deleted:
            for oid in ids:
                target = self.groups if name.startswith("productGroup.") else self.products
                target.pop(oid, None)

    # ------------------------------------------------------------------ reading the API

    async def refresh(self) -> None:
        """Read the whole catalogue (background priority); SourceUnavailable when it cannot."""
        for row in await self.client.get_pages("/productgroups", background=True):
            self.remember_group(row)
        for row in await self.client.get_pages("/products", background=True):
            self.remember_product(row)
        for row in await self.client.get_pages("/tables", background=True):
            self.remember_table(row)
        self.loaded = True

    async def ensure(
        self, product_ids: Iterable[int | None], table_ids: Iterable[int | None]
    ) -> None:
        """Look up, by id, the products (with their groups up the tree) and tables kds has not seen."""
        wanted = {p for p in product_ids if p is not None}
        for pid in wanted - set(self.products):
            row = await self._lookup(f"/products/{pid}", {"includeProductGroup": "true"})
            if row is not None:
                self.remember_product(row)
        for pid in wanted:
            product = self.products.get(pid)
            gid, depth = (product.group_id if product else None), 0
            while gid is not None and depth < MAX_DEPTH:
                if gid not in self.parents:
                    row = await self._lookup(f"/productgroups/{gid}")
                    if row is None:
                        break
                    self.remember_group(row)
                gid, depth = self.parents.get(gid), depth + 1
        for tid in {t for t in table_ids if t is not None} - set(self.tables):
            row = await self._lookup(f"/tables/{tid}")
            if row is not None:
                self.remember_table(row)

    async def _lookup(
        self, path: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """One row by id; None (logged) when it cannot be read: the item is routed with what is known."""
        try:
            row = await self.client.get(path, params)
        except SourceUnavailable as err:
            log.warning("ready2order.lookup_failed", path=path, error=str(err))
            return None
        return row if isinstance(row, dict) else None

    # ------------------------------------------------------------------ answers

    def group_chain(self, gid: int | None) -> list[str]:
        """The names of a group and the groups it is inside, innermost first."""
        chain: list[str] = []
        seen: set[int] = set()
        while gid is not None and gid not in seen and len(seen) < MAX_DEPTH:
            seen.add(gid)
            if gid in self.groups:
                chain.append(self.groups[gid])
            gid = self.parents.get(gid)
        return chain

    def table_name(self, table: int | None) -> str:
        """A table's name (its id until the name is known)."""
        if table is None:
            return "?"
        return self.tables.get(table, str(table))
