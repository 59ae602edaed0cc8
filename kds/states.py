"""The status state machine of one order item at one order endpoint.

Pure: no I/O, no clock, no kds imports. `OrderStatus`, its sets and the table
(DESIGN §4) live here; `apply_transition` is the one function that decides
whether a change is allowed, and `path` the walk to a status further on.
Everything that changes a status (the service core) calls them; nothing else
encodes the rules.
"""

from __future__ import annotations

import enum
from collections import deque
from operator import attrgetter
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


def fast_value(cls: type[E]) -> type[E]:
    """Class decorator: the enum's members give their `value` from C.

    Enum's own `value` is a property written in Python (two Python calls per read on 3.11),
    and pydantic reads it for every enum it encodes: a dozen statuses per order's JSON.
    """
    # setattr after the class is made: in its body `value` would be taken for a member.
    setattr(cls, "value", property(attrgetter("_value_")))  # noqa: B010 (mypy: a method)
    return cls


@fast_value
class OrderStatus(str, enum.Enum):
    """PORTOS OrderStatus (seed 004)."""

    UNKNOWN = "unknown"
    CREATED = "created"
    SENT = "sent"
    DELIVERED = "delivered"
    REFUSED = "refused"
    FAILED = "failed"
    ACCEPTED = "accepted"
    PROCESS_SKIPPED = "processSkipped"
    PROCESSED = "processed"


S = OrderStatus

#: Final statuses: no further change except an explicit recall from `processed`.
FINAL: frozenset[OrderStatus] = frozenset({S.REFUSED, S.PROCESSED, S.PROCESS_SKIPPED})

#: Processable statuses: the endpoint still has to deliver the item.
PROCESSABLE: frozenset[OrderStatus] = frozenset({S.CREATED, S.FAILED})

#: Allowed ordinary transitions (DESIGN §4). `unknown` is what a POS may report
#: before routing; it can only be routed (created) or cancelled.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.UNKNOWN: frozenset({S.CREATED, S.PROCESS_SKIPPED}),
    S.CREATED: frozenset({S.SENT, S.FAILED, S.PROCESS_SKIPPED}),
    S.SENT: frozenset({S.DELIVERED, S.FAILED, S.PROCESS_SKIPPED}),
    S.FAILED: frozenset({S.SENT, S.PROCESS_SKIPPED}),
    S.DELIVERED: frozenset({S.ACCEPTED, S.PROCESSED, S.REFUSED, S.PROCESS_SKIPPED}),
    S.ACCEPTED: frozenset({S.PROCESSED, S.REFUSED, S.PROCESS_SKIPPED}),
    S.PROCESSED: frozenset(),
    S.REFUSED: frozenset(),
    S.PROCESS_SKIPPED: frozenset(),
}

#: The one exit from a final status: a cook recalls a bumped ticket.
RECALL: tuple[OrderStatus, OrderStatus] = (S.PROCESSED, S.ACCEPTED)

#: How far along an item is; the order's status at an endpoint is its least
#: advanced non-final item.
PROGRESS: dict[OrderStatus, int] = {
    S.UNKNOWN: 0,
    S.CREATED: 1,
    S.FAILED: 2,
    S.SENT: 3,
    S.DELIVERED: 4,
    S.ACCEPTED: 5,
    S.REFUSED: 6,
    S.PROCESS_SKIPPED: 6,
    S.PROCESSED: 7,
}


class TransitionError(ValueError):
    """A status change the table does not allow."""

    def __init__(self, current: OrderStatus, target: OrderStatus, allowed: frozenset[OrderStatus]):
        self.current = current
        self.target = target
        self.allowed = allowed
        names = ", ".join(sorted(s.value for s in allowed)) or "none (final status)"
        super().__init__(
            f"cannot change status from {current.value} to {target.value}; allowed: {names}"
        )


def allowed_targets(current: OrderStatus, *, recall: bool = False) -> frozenset[OrderStatus]:
    """The statuses `current` may move to (with `recall`, the recall exit too)."""
    allowed = TRANSITIONS[current]
    if recall and current is RECALL[0]:
        allowed = allowed | {RECALL[1]}
    return allowed


def apply_transition(
    current: OrderStatus, target: OrderStatus, *, recall: bool = False
) -> OrderStatus | None:
    """Return the new status, or None when `target` is the current status (a no-op).

    Raises TransitionError for any change the table does not allow. `recall`
    must be set explicitly for the processed → accepted exit.
    """
    if target is current:
        return None
    if target in allowed_targets(current, recall=recall):
        return target
    raise TransitionError(current, target, allowed_targets(current, recall=recall))


#: Statuses a walk may pass through: real progress, never a failure or an end.
_WAYPOINTS: frozenset[OrderStatus] = frozenset({S.SENT, S.DELIVERED, S.ACCEPTED})


def path(current: OrderStatus, target: OrderStatus) -> list[OrderStatus]:
    """The statuses from `current` to `target`, each step an allowed transition.

    Empty when `target` is the current status. The shortest walk through
    sent/delivered/accepted only (`sent` → `accepted` is [delivered, accepted]).
    Raises TransitionError (with the direct targets) when `target` cannot be
    reached; a recall and a screen's receipt (`delivered`) are never walked to.
    """
    if target is current:
        return []
    if target is S.DELIVERED and current is not S.SENT:
        # A receipt only acknowledges a `sent` ticket: a late one (the print failed since) stays refused.
        raise TransitionError(current, target, allowed_targets(current))
    came_from: dict[OrderStatus, OrderStatus] = {}
    queue = deque([current])
    while queue:
        status = queue.popleft()
        for step in sorted(TRANSITIONS[status], key=PROGRESS.__getitem__):
            if step in came_from or step is current:
                continue
            came_from[step] = status
            if step is target:
                walk = [step]
                while came_from[walk[-1]] is not current:
                    walk.append(came_from[walk[-1]])
                return walk[::-1]
            if step in _WAYPOINTS:
                queue.append(step)
    raise TransitionError(current, target, allowed_targets(current))


def summarize(statuses: list[OrderStatus]) -> OrderStatus:
    """The status of a group of item endpoints: the least advanced non-final one.

    When every status is final the most advanced final status wins (processed
    over refused/processSkipped), so a fully bumped order reads `processed`.
    """
    if not statuses:
        return S.UNKNOWN
    open_ = [s for s in statuses if s not in FINAL]
    if open_:
        return min(open_, key=PROGRESS.__getitem__)
    if S.PROCESSED in statuses:
        return S.PROCESSED
    if S.REFUSED in statuses:
        return S.REFUSED
    return S.PROCESS_SKIPPED
