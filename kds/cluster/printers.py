"""One lock per printer: several nodes of a site share its printers, each driven by one node.

A printer endpoint is driven by the node holding its advisory lock
`printer:<endpoint>`. Printers that share a device — one falls back to the
other's printer, or to the same address — form one group under one lock
(named after the group's first endpoint), so two nodes never write to one
device at once. The node holding a group runs its queues in the spooler and
takes its `print` entries from the outbox; on takeover another node reads the
pending ones from the database, every attempt counted (REPRINT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..printing.config import PrinterConfig, split_address

#: The lock resource of a printer group: "printer:" + its first endpoint's name.
PREFIX = "printer:"


class _Endpoint(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def printer(self) -> PrinterConfig | None: ...


class _Spooler(Protocol):
    async def start_printer(self, endpoint: str) -> None: ...

    async def stop_printer(self, endpoint: str) -> None: ...

    def printer_states(self) -> list[dict[str, Any]]: ...


def printer_groups(endpoints: Sequence[_Endpoint]) -> list[list[str]]:
    """The printer endpoints in groups that share a device, in config order."""
    printed = [e for e in endpoints if e.printer is not None]
    addresses = {e.name: split_address(e.printer.address) for e in printed if e.printer}
    devices: dict[str, set[tuple[str, int]]] = {}
    for endpoint in printed:
        assert endpoint.printer is not None
        own = {addresses[endpoint.name]}
        fallback = endpoint.printer.fallback
        if fallback:
            own.add(addresses.get(fallback) or split_address(fallback))
        devices[endpoint.name] = own
    groups: list[list[str]] = []
    group_devices: list[set[tuple[str, int]]] = []
    for name, own in devices.items():
        joined = [i for i, seen in enumerate(group_devices) if seen & own]
        merged, merged_devices = [name], set(own)
        for i in reversed(joined):  # a printer may bridge two groups
            merged = groups.pop(i) + merged
            merged_devices |= group_devices.pop(i)
        groups.append(sorted(merged, key=list(devices).index))
        group_devices.append(merged_devices)
    return sorted(groups, key=lambda group: list(devices).index(group[0]))


class PrinterGroup:
    """The printers of one lock, started and stopped together in the spooler."""

    def __init__(self, spooler: _Spooler, endpoints: list[str]) -> None:
        self.spooler = spooler
        self.endpoints = endpoints
        self.name = PREFIX + endpoints[0]

    async def start(self) -> None:
        """Drive these printers: their queues run and take their outbox entries."""
        for endpoint in self.endpoints:
            await self.spooler.start_printer(endpoint)

    async def stop(self) -> None:
        """Stop driving them (what is pending stays in the outbox for the next holder)."""
        for endpoint in reversed(self.endpoints):
            await self.spooler.stop_printer(endpoint)

    def health(self) -> dict[str, Any]:
        """ok unless one of these printers reports a fault."""
        states = [s for s in self.spooler.printer_states() if s["endpoint"] in self.endpoints]
        return {
            "ok": all(s["ok"] for s in states),
            "printers": {s["endpoint"]: s["state"] for s in states},
        }
