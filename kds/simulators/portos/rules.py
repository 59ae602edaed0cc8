"""PORTOS order statuses as seed 004 describes them (its transition diagram is missing).

What the seed says: the statuses are unknown, created, sent, delivered,
refused, failed, accepted, processSkipped, processed; an order is processable
while created or failed; refused, processed and processSkipped are final and
"no further state transitions are permitted beyond this point". Nothing more
is documented, so this fake allows every change from a status that is not
final to any status but `unknown` (nobody sets that), and a repeat of the
current status changes nothing. kds's own table (`kds.states`) is stricter;
these rules are deliberately not it.
"""

from __future__ import annotations

STATUSES = frozenset(
    {
        "unknown",
        "created",
        "sent",
        "delivered",
        "refused",
        "failed",
        "accepted",
        "processSkipped",
        "processed",
    }
)
FINAL = frozenset({"refused", "processed", "processSkipped"})
PROCESSABLE = frozenset({"created", "failed"})


class StatusConflict(ValueError):
    """A change the seed does not permit (from a final status, or to `unknown`)."""


def next_status(current: str, wanted: str) -> str | None:
    """The new status, or None when nothing changes; raises StatusConflict."""
    if wanted not in STATUSES:
        raise ValueError(f"unknown status {wanted!r}")
    if wanted == current:
        return None
    if current in FINAL:
        raise StatusConflict(f"status {current} is final; cannot change it to {wanted}")
    if wanted == "unknown":
        raise StatusConflict("status cannot be set to unknown")
    return wanted
