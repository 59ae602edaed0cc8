"""`/healthz` (the process answers), `/readyz` (it can serve), `/metrics`."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..appkeys import COMPONENTS, METRICS
from ..tasks import TaskSupervisor
from .auth import ACCESS

routes = web.RouteTableDef()

#: Components without which kds cannot take or keep an order.
CRITICAL = frozenset({"store", "service", "bus", "outbox"})


def component_health(app: web.Application) -> dict[str, dict[str, Any]]:
    """health() of every started component, by name."""
    report = {}
    for component in app.get(COMPONENTS, []):
        try:
            report[component.name] = component.health()
        except Exception as err:
            report[component.name] = {"ok": False, "error": repr(err)}
    return report


@routes.get("/healthz")
async def _handle_healthz(request: web.Request) -> web.Response:
    """The process is alive and its loop answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def _handle_readyz(request: web.Request) -> web.Response:
    """Ready when every critical component is; degraded parts (a POS down) are listed.

    Anyone gets the status; the components' details (sources, printers, counts)
    only a caller who may read (a token, or the trust of the access mode).
    """
    report = component_health(request.app)
    if not report:
        return web.json_response({"status": "starting", "components": {}}, status=503)
    critical_ok = all(h.get("ok") for name, h in report.items() if name in CRITICAL)
    all_ok = all(h.get("ok") for h in report.values())
    status = "ok" if all_ok else ("degraded" if critical_ok else "unavailable")
    body: dict[str, Any] = {"status": status}
    if request.app[ACCESS].may_read(request):
        body["components"] = report
        # One line per part that is not ok, so an operator sees why without reading every component.
        body["reasons"] = {name: _reason(h) for name, h in report.items() if not h.get("ok")}
    return web.json_response(body, status=200 if critical_ok else 503)


def _reason(health: dict[str, Any]) -> str:
    """Why a component is not ok, from what its health() reports."""
    for key in ("reason", "lastError", "error", "state"):
        if health.get(key):
            return str(health[key])
    return "not ok"


@routes.get("/metrics")
async def _handle_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class ComponentCollector(Collector):
    """`kds_component_up{component}` from each component's health()."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Any:
        gauge = GaugeMetricFamily(
            "kds_component_up", "1 when the component reports ok", labels=["component"]
        )
        for name, health in component_health(self._app).items():
            gauge.add_metric([name], 1.0 if health.get("ok") else 0.0)
        yield gauge
        tasks = GaugeMetricFamily("kds_tasks", "Background tasks by state", labels=["state"])
        for component in self._app.get(COMPONENTS, []):
            if isinstance(component, TaskSupervisor):
                for state, count in component.counts().items():
                    tasks.add_metric([state], count)
        yield tasks
