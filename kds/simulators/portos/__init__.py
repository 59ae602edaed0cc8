"""A PORTOS server on 127.0.0.1 for tests and `kds demo`.

`state` holds what the back office holds and applies the seed's rules, `app` serves
it over HTTP, `control` runs it and drives it (Python, `/_sim/` routes, `kds
portos-sim`). It encodes the seeds on its own — status rules (`rules`), NData
queries (`query`) and NWS4 request signing (`nws4`) — and imports nothing from
`kds.sources` or `kds.states`, so a bug in kds's adapter cannot hide behind the
same bug in its fake (tests/test_import_rules.py keeps it that way).
"""

from __future__ import annotations

from .control import PortosSimulator, register
from .state import PortosState, StatusPost

__all__ = ["PortosSimulator", "PortosState", "StatusPost", "register"]
