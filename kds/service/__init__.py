"""The application core: the only code that changes order state.

Sources, HTTP handlers, screens and printers call `KitchenService`; it routes
items, applies the state machine and hands the change to the store as one
`Batch` (rows, audit, outbox entries), and only after the commit updates the
live view (`kds.view`), publishes the event and hands out the side effects
(staged by `kds.effects`). Raw source events go through `kds.inbox`,
archiving through `kds.archive`; SQL lives only in `kds.store`.

One module per command group, all built on `core.ServiceCore` (parts, reads,
the commit pipeline): `ingest`, `status` (set_status/cancel: where a bump is
handled; ticket updates), `workflow` (rush, allergen ack, move), `pacing` (fire
course, release due); `metrics` holds the Prometheus metrics; `kitchen` composes
them into `KitchenService`.
"""

from __future__ import annotations

from .ingest import IngestResult
from .kitchen import KitchenService
from .metrics import NATIVE_SOURCE

__all__ = ["NATIVE_SOURCE", "IngestResult", "KitchenService"]
