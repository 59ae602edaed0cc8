"""What is held back and what is due when — pure functions of an order, the config and a time.

An item at an endpoint is *held* (`Order.holds`) while it must not reach that
station yet; it stays `created` there, is not shown as work and not printed.
Holds are decided in three stages whenever items are released — at ingest,
when a scheduled order's window opens, when a course is fired:

1. scheduled: the order is due at `dueAt`; the endpoint sees it `lead_time` before;
2. course: at an endpoint with `hold_courses`, every course after the order's
   first waits until fired (by hand, or `fire_delay` after the previous course
   was bumped everywhere);
3. prep: of the items released together, the one with the longest `prep_time`
   starts at once and each other waits the difference, so they finish together.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..config import EndpointConfig, PrepTimeRule, Settings
from ..model import Hold, HoldReason, ItemEndpoint, Order, OrderItem, OrderStatus
from ..routing import ProductMatcher
from ..states import FINAL

#: An item at an endpoint: (item id, endpoint name).
Pair = tuple[int, str]

_STAGES = (HoldReason.SCHEDULED, HoldReason.COURSE, HoldReason.PREP)


class PrepTimes:
    """How long a product takes, from `[[prep_times]]` (the first matching rule counts)."""

    def __init__(self, rules: Sequence[PrepTimeRule]) -> None:
        self._matcher = ProductMatcher(rules)
        self._any = bool(rules)

    def __bool__(self) -> bool:
        return self._any

    def of(self, item: OrderItem) -> float | None:
        """Seconds `item` takes, if a rule names it."""
        rule = self._matcher.first(item.plu)
        return None if rule is None else rule.time


@dataclass(frozen=True)
class Pacing:
    """The pacing configuration: endpoints by name and prep times."""

    endpoints: Mapping[str, EndpointConfig]
    prep: PrepTimes

    @functools.cached_property
    def holds_courses(self) -> bool:
        """Whether some endpoint holds later courses or some product has a prep time."""
        # Asked once per new order; the config is fixed (8,000 instructions an order).
        return bool(self.prep) or any(e.hold_courses for e in self.endpoints.values())

    @property
    def auto_bumps(self) -> bool:
        """Whether some endpoint bumps by itself."""
        return any(e.auto_bump_after is not None for e in self.endpoints.values())

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacing:
        """The pacing part of the whole config."""
        return cls({e.name: e for e in settings.endpoints}, PrepTimes(settings.prep_times))

    def plan(
        self,
        order: Order,
        pairs: Iterable[Pair],
        *,
        now: datetime,
        after: HoldReason | None = None,
    ) -> list[Hold]:
        """Holds for `pairs` being released at `now` (from a hold `after`, or new: None).

        The pairs without a hold are released now.
        """
        if order.due_at is None and not self.holds_courses:
            return []  # the common case, once per new order: nothing can be held
        start = 0 if after is None else _STAGES.index(after) + 1
        items = {i.id: i for i in order.items}
        remaining = list(pairs)
        holds: list[Hold] = []
        for stage in _STAGES[start:]:
            held = self._stage(stage, order, items, remaining, now)
            holds += held
            kept = {(h.item_id, h.endpoint) for h in held}
            remaining = [p for p in remaining if p not in kept]
        return holds

    def _stage(
        self,
        stage: HoldReason,
        order: Order,
        items: dict[int, OrderItem],
        pairs: list[Pair],
        now: datetime,
    ) -> list[Hold]:
        if stage is HoldReason.SCHEDULED:
            return self._scheduled(order, items, pairs, now)
        if stage is HoldReason.COURSE:
            return self._later_courses(order, items, pairs)
        return self._prep_waits(items, pairs, now)

    def _scheduled(
        self, order: Order, items: dict[int, OrderItem], pairs: list[Pair], now: datetime
    ) -> list[Hold]:
        """Each endpoint sees a scheduled order its `lead_time` before it is due."""
        if order.due_at is None:
            return []
        holds = []
        for item_id, name in pairs:
            opens = order.due_at - timedelta(seconds=self._lead_time(name))
            if opens > now:
                holds.append(_hold(item_id, name, HoldReason.SCHEDULED, items, release_at=opens))
        return holds

    def _later_courses(
        self, order: Order, items: dict[int, OrderItem], pairs: list[Pair]
    ) -> list[Hold]:
        """At a `hold_courses` endpoint, every course after the order's first waits to be fired."""
        courses = [i.course_number for i in order.items if i.course_number is not None]
        if not courses:
            return []
        first = min(courses)
        return [
            _hold(item_id, name, HoldReason.COURSE, items)
            for item_id, name in pairs
            if (config := self.endpoints.get(name)) is not None
            and config.hold_courses
            and (course := items[item_id].course_number) is not None
            and course > first
        ]

    def _prep_waits(
        self, items: dict[int, OrderItem], pairs: list[Pair], now: datetime
    ) -> list[Hold]:
        """The longest prep time starts now; each shorter one waits the difference."""
        times = {pair: self.prep.of(items[pair[0]]) for pair in pairs}
        longest = max((t for t in times.values() if t), default=0.0)
        return [
            _hold(
                item_id,
                name,
                HoldReason.PREP,
                items,
                release_at=now + timedelta(seconds=longest - t),
            )
            for (item_id, name), t in times.items()
            if t and t < longest
        ]

    def _lead_time(self, endpoint: str) -> float:
        config = self.endpoints.get(endpoint)
        return (
            config.lead_time
            if config is not None
            else EndpointConfig.model_fields["lead_time"].default
        )

    def due(self, order: Order, now: datetime) -> Due:
        """What the timers must do for `order` now, and when to look at it next."""
        due = Due()
        for hold in order.holds:
            if hold.release_at is not None:
                due.release |= due.reached(hold.release_at, now)
        self._course_fires(order, now, due)
        self._auto_bumps(order, now, due)
        return due

    def _course_fires(self, order: Order, now: datetime, due: Due) -> None:
        waiting = [h for h in order.holds if h.reason is HoldReason.COURSE and h.release_at is None]
        if not waiting:
            return
        course = min(h.course for h in waiting if h.course is not None)
        before = [
            e
            for i in order.items
            if i.course_number is not None and i.course_number < course
            for e in i.endpoints
        ]
        if any(e.status not in FINAL for e in before):
            return  # fired when the last of them is bumped (the order changes then)
        finished = max((_last_change(e) for e in before), default=order.created_at)
        for name in sorted({h.endpoint for h in waiting if h.course == course}):
            config = self.endpoints.get(name)
            delay = config.fire_delay if config is not None else 0.0
            at = finished + timedelta(seconds=delay)
            if due.reached(at, now):
                due.fires.append((course, name))

    def _auto_bumps(self, order: Order, now: datetime, due: Due) -> None:
        for name, config in self.endpoints.items():
            if config.auto_bump_after is None:
                continue
            after = timedelta(seconds=config.auto_bump_after)
            for item in order.items:
                ep = item.endpoint(name)
                if ep is None or ep.status is not OrderStatus.ACCEPTED:
                    continue
                if due.reached(_last_change(ep, OrderStatus.ACCEPTED) + after, now):
                    due.bumps.setdefault(name, []).append(item.id)


@dataclass
class Due:
    """What is due for one order now, and the next time something will be."""

    release: bool = False  # timed holds (scheduled, prep) reached their time
    fires: list[tuple[int, str]] = field(default_factory=list)  # (course, endpoint)
    bumps: dict[str, list[int]] = field(default_factory=dict)  # endpoint -> item ids
    next_at: datetime | None = None

    def reached(self, at: datetime, now: datetime) -> bool:
        """Whether `at` has come; if not, it counts as a later deadline."""
        if at <= now:
            return True
        if self.next_at is None or at < self.next_at:
            self.next_at = at
        return False

    def __bool__(self) -> bool:
        return self.release or bool(self.fires) or bool(self.bumps)


def _hold(
    item_id: int,
    endpoint: str,
    reason: HoldReason,
    items: dict[int, OrderItem],
    *,
    release_at: datetime | None = None,
) -> Hold:
    return Hold(
        item_id=item_id,
        endpoint=endpoint,
        reason=reason,
        course=items[item_id].course_number,
        release_at=release_at,
    )


def _last_change(ep: ItemEndpoint, status: OrderStatus | None = None) -> datetime:
    """When `ep` last changed (to `status`)."""
    return next(c.date for c in reversed(ep.status_changes) if status is None or c.status is status)
