"""Typed keys for what the aiohttp app carries (no module-level globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from .bus import EventBus
    from .cluster import Cluster
    from .config import Settings
    from .printing.spooler import PrintSpooler
    from .service import KitchenService

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICE: web.AppKey[KitchenService] = web.AppKey("service")
BUS: web.AppKey[EventBus] = web.AppKey("bus")
METRICS: web.AppKey[CollectorRegistry] = web.AppKey("metrics")
#: Every started component, for /readyz and /metrics.
COMPONENTS: web.AppKey[list[Any]] = web.AppKey("components")
#: The print spooler; absent when no endpoint has a printer.
SPOOLER: web.AppKey[PrintSpooler] = web.AppKey("spooler")
#: Several nodes on one PostgreSQL database (kds.cluster); absent on SQLite.
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
#: Extra live state for websocket snapshots (e.g. printer states), name → callable.
SNAPSHOT_EXTRAS: web.AppKey[dict[str, Any]] = web.AppKey("snapshot_extras")

#: The role of the authenticated caller (recorded as the actor of status changes).
ACTOR: web.RequestKey[str] = web.RequestKey("actor", str)
