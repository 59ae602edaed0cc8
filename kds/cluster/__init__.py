"""Several kds nodes on one PostgreSQL database (high availability, a chain of sites).

Each node keeps its own in-memory view and serves its own screens; the
database is the one truth. `bus.ClusterBus` carries every node's events
through the database (LISTEN/NOTIFY, numbered by a sequence), and a node
re-reads an order another node changed before its screens see the event.
`locks.LockHolder` makes sure exactly one node drives each printer and each
POS source (`printers` groups the printers by lock); `outbox.ClusterOutbox`
hands that node what any node staged.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..service import KitchenService
from ..store import OrderStore
from ..store.postgres import PostgresStore
from ..tasks import TaskSupervisor
from .bus import ClusterBus
from .locks import Guarded, LockHolder
from .outbox import ClusterOutbox
from .printers import PREFIX, PrinterGroup, printer_groups

#: Locks of a site: the kitchen timers (auto-bump, course pacing) and the archiver; one per
#: printer (`printer:<endpoint>`, see `printers`) and one per POS source, `source:<name>`.
TIMERS = "timers"
ARCHIVER = "archiver"


def node_name(configured: str | None) -> str:
    """This node's name: `[node] name`, else the host name."""
    return configured or socket.gethostname()


class Cluster:
    """The parts a node needs to share its database with other nodes."""

    def __init__(self, settings: Settings, url: str, supervisor: TaskSupervisor) -> None:
        self._supervisor = supervisor
        self.node = node_name(settings.node.name)
        self.site = settings.node.site
        # Who sent an event or a change: unique per process, even where two nodes share a
        # name (two kds on one host); the name is what people see.
        self.origin = f"{self.node}/{os.getpid()}/{secrets.token_hex(4)}"
        self.bus = ClusterBus(url, self.origin, self.site, supervisor=supervisor)
        self.locks = LockHolder(url, self.node, self.site, supervisor=supervisor)
        self._outbox: ClusterOutbox | None = None
        self._service: KitchenService | None = None
        self._printer_locks: dict[str, str] = {}  # printer endpoint → its lock

    def outbox(self, store: OrderStore) -> ClusterOutbox:
        """The node's outbox."""
        self._outbox = ClusterOutbox(store, supervisor=self._supervisor)
        return self._outbox

    def attach(self, service: KitchenService, store: OrderStore) -> None:
        """Let other nodes' changes update this node's view (and outbox)."""
        self._service = service
        self.bus.on_changed = self._changed
        self.bus.on_unannounced = service.announce
        if self._outbox is not None:
            self._outbox.refresh = self._changed
        if isinstance(store, PostgresStore):
            store.origin = self.origin  # its commits name the orders they change
            service.share_numbers(store.claim_numbers)  # no number twice across nodes

    async def _changed(self, order_ids: set[str]) -> None:
        assert self._service is not None
        await self._service.refresh(order_ids)
        if self._outbox is not None:
            self._outbox.sync_soon()  # the change may have staged a ticket or a write-back

    def guarded_printers(self, spooler: Any, endpoints: Sequence[Any]) -> list[Guarded]:
        """The spooler's printers, each group run only on the node holding its lock."""
        guarded = []
        for group in printer_groups(endpoints):
            resource = PREFIX + group[0]
            self._printer_locks.update(dict.fromkeys(group, resource))
            guarded.append(self.guarded(PrinterGroup(spooler, group), resource))
        return guarded

    def printer_holder(self, endpoint: str) -> str | None:
        """The node driving `endpoint`'s printer (None while nobody does)."""
        resource = self._printer_locks.get(endpoint)
        return None if resource is None else self.locks.holder(resource)

    def guarded(self, component: Any, resource: str) -> Guarded:
        """`component`, run only on the node holding the lock of `resource`."""
        return Guarded(component, resource, self.locks)

    def guarded_sources(self, configs: Sequence[Any], sources: Sequence[Any]) -> list[Any]:
        """Each source run only on the node holding its lock — but the native source, which
        drives nothing (orders are posted to it), runs on every node."""
        return [
            source if config.type == "native" else self.guarded(source, f"source:{config.name}")
            for config, source in zip(configs, sources, strict=True)
        ]
