"""A PORTOS server on 127.0.0.1 for tests and `kds demo` (see `server`).

It encodes the seeds on its own — status rules (`rules`), NData queries
(`query`) and NWS4 request signing (`nws4`) — and imports nothing from
`kds.sources` or `kds.states`, so a bug in kds's adapter cannot hide behind the
same bug in its fake (tests/test_import_rules.py keeps it that way).
"""

from __future__ import annotations

from .server import Faults, PortosSimulator, StatusPost, register

__all__ = ["Faults", "PortosSimulator", "StatusPost", "register"]
