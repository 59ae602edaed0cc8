"""Where a kds status change goes back to PORTOS: the route that means exactly that change.

The shared `WritebackConsumer` (kds.sources.writeback) hands each `writeback`
outbox entry of a PORTOS source to `PortosWriteback.send`, per order strictly in
order; this module only knows which PORTOS route to call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog

from ...states import FINAL
from ..base import SourceUnavailable, WritebackEntry
from ..http import PosRejected
from ..writeback import WritebackDeferred, WritebackRefused, effect_of
from .translate import FINAL_VALUES, REST_MARK, STATUS_VALUES

if TYPE_CHECKING:
    from .source import PortosSource

log = structlog.get_logger(__name__)


class PortosWriteback:
    """Says each kds status change to PORTOS with a route that means exactly that change.

    PORTOS has three routes: the whole order, one item (at every endpoint of
    the item) and one endpoint (every item there). A change of every line at an
    endpoint, or of a line PORTOS routes to that endpoint only, maps directly.
    A line shared with other endpoints is said through the endpoint route or
    the item route only once the rest of what that route touches is at the same
    status or final in PORTOS (final lines are left alone); until then the
    change is deferred (`WritebackDeferred`), never dropped.
    """

    def __init__(self, source: PortosSource) -> None:
        self._source = source
        self._config = source.config

    async def send(self, entry: WritebackEntry) -> None:
        """Write one outbox `writeback` entry to PORTOS (raises to retry, defer or refuse)."""
        try:
            await self._send(entry)
        except PosRejected as err:  # a 4xx: the same request will not do better
            raise WritebackRefused(err.status, err.detail) from err

    async def _send(self, entry: WritebackEntry) -> None:
        effect = effect_of(entry)
        external_id, status, kds_endpoint = effect.external_id, effect.status, effect.endpoint
        if not external_id or status not in STATUS_VALUES or not kds_endpoint:
            raise WritebackRefused("unusable", f"unusable writeback payload {entry.payload!r}")
        if external_id in self._source.deleted or REST_MARK in external_id:
            reason = (
                "deleted in PORTOS"
                if external_id in self._source.deleted
                else "rest of a returned line"
            )
            log.info(
                "portos.writeback_skipped",
                source=self._config.name,
                order=external_id,
                reason=reason,
            )
            return
        client = self._source.client
        endpoint = self._config.to_portos(kds_endpoint)
        order_path = f"/orders/{quote(external_id, safe='')}"
        endpoint_path = f"{order_path}/endpoints/{quote(endpoint, safe='')}/status"
        body = {"status": status}
        if effect.all_items:
            await client.request("POST", endpoint_path, body=body)
            return
        routed = await self._source.item_endpoints(external_id)
        item_ids = list(effect.item_ids)
        shared = []
        for item_id in item_ids:
            if routed.get(item_id) == [endpoint]:
                await client.request("POST", f"{order_path}/items/{item_id}/status", body=body)
            else:
                shared.append(item_id)
        if shared:
            await self._send_shared(entry, external_id, endpoint, shared, status)

    async def _send_shared(
        self, entry: WritebackEntry, external_id: str, endpoint: str, items: list[int], status: str
    ) -> None:
        client = self._source.client
        order_path = f"/orders/{quote(external_id, safe='')}"
        raw = await client.request("GET", order_path)
        if not isinstance(raw, dict):
            raise SourceUnavailable(f"GET {order_path}: the answer is not an Order")
        now = _statuses(raw)
        remaining = []
        for item_id in items:
            current = now.get((item_id, endpoint))
            if current is None:
                raise WritebackRefused(
                    404, f"PORTOS has no item {item_id} at endpoint {endpoint!r}"
                )
            if current == status:
                continue
            if current in FINAL_VALUES:
                raise WritebackRefused(
                    "conflict", f"item {item_id} at {endpoint} is already {current} in PORTOS"
                )
            remaining.append(item_id)
        if not remaining:
            return
        body = {"status": status}
        others = [s for (i, e), s in now.items() if e == endpoint and i not in remaining]
        if all(s == status or s in FINAL_VALUES for s in others):
            await client.request(
                "POST", f"{order_path}/endpoints/{quote(endpoint, safe='')}/status", body=body
            )
            return
        waiting = []
        for item_id in remaining:
            elsewhere = [s for (i, e), s in now.items() if i == item_id and e != endpoint]
            if all(s == status or s in FINAL_VALUES for s in elsewhere):
                await client.request("POST", f"{order_path}/items/{item_id}/status", body=body)
            else:
                waiting.append(item_id)
        if waiting:
            raise WritebackDeferred(
                f"{status} of item(s) {waiting} at {endpoint}: PORTOS has no route for one line at one of its"
                " endpoints; sent once the rest of the endpoint or the line's other endpoints catch up",
                can_wait=self._may_change(entry, waiting),
            )

    def _may_change(self, entry: WritebackEntry, items: list[int]) -> bool:
        """Whether kds may still change what blocks this write-back (else waiting is pointless)."""
        order = self._source.ctx.service.get(str(entry.order_id))
        if order is None:
            return False
        endpoint = effect_of(entry).endpoint
        blocking = [
            e.status
            for i in order.items
            for e in i.endpoints
            if (e.name == endpoint and i.id not in items) or (i.id in items and e.name != endpoint)
        ]
        return any(s not in FINAL for s in blocking)


def _statuses(raw: dict[str, Any]) -> dict[tuple[int, str], str]:
    """(item id, PORTOS endpoint) → current status, from an Order."""
    found: dict[tuple[int, str], str] = {}
    for item in raw.get("items") or []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            continue
        for ep in item.get("endpoints") or []:
            if isinstance(ep, dict) and ep.get("name"):
                found[(item["id"], str(ep["name"]))] = str(
                    ep.get("orderItemStatus") or ep.get("status")
                )
    return found
