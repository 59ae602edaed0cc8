"""`KitchenService`: the command groups composed into the one service the daemon runs."""

from __future__ import annotations

from .ingest import IngestCommands
from .pacing import PacingCommands
from .status import StatusCommands
from .workflow import WorkflowCommands


class KitchenService(IngestCommands, StatusCommands, WorkflowCommands, PacingCommands):
    """Ingest, route and change the status of orders — durably, then live."""

    name = "service"
