"""Simulated cooks for `kds demo`: they work the station screens so the restaurant flows.

A cook per station watches the live feed like a station screen
(`/api/v1/ws?endpoint=grill`) and works each ticket through the same HTTP API a
screen uses: acknowledges it (`delivered`), accepts it after a short look
(`accepted`), and bumps it once it is cooked (`processed`). How long each step
takes is drawn around a `CookPace`; the clock is injectable (`sleep`) and the
pace has a `speed` factor, so tests run a kitchen shift in seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

log = structlog.get_logger(__name__)

FINAL = frozenset({"processed", "refused", "processSkipped"})
#: Statuses a cook can work from (a ticket still `created` or `failed` waits for its printer).
WORKABLE = frozenset({"sent", "delivered", "accepted"})

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class CookPace:
    """Mean seconds a cook takes; each ticket's times are drawn around them."""

    accept_after: float = 15.0  # from the ticket appearing to the cook starting it
    cook_base: float = 60.0  # cooking time of a ticket …
    cook_per_item: float = 20.0  # … plus this per item at the station
    speed: float = 1.0  # > 1 runs the kitchen that many times faster

    def accept_delay(self, rng: random.Random) -> float:
        """Seconds until the cook accepts a ticket."""
        return rng.uniform(0.5, 1.5) * self.accept_after / self.speed

    def cook_time(self, items: int, rng: random.Random) -> float:
        """Seconds from accepting a ticket of `items` items to bumping it."""
        return rng.uniform(0.7, 1.3) * (self.cook_base + self.cook_per_item * items) / self.speed


class SimulatedCooks:
    """One cook per station, working tickets through kds's HTTP API until stopped."""

    def __init__(
        self,
        base_url: str,
        endpoints: list[str],
        pace: CookPace | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.endpoints = endpoints
        self.pace = pace or CookPace()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._working: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.bumped = 0  # tickets bumped so far

    async def start(self) -> None:
        """Put a cook at every station."""
        self._http = aiohttp.ClientSession(self.base_url)
        for endpoint in self.endpoints:
            self._tasks.append(asyncio.create_task(self._watch(endpoint), name=f"cook:{endpoint}"))

    async def stop(self) -> None:
        """Send the cooks home (tickets in hand stay as they are)."""
        tasks = [*self._tasks, *self._working.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _watch(self, endpoint: str) -> None:
        """Follow the station's live feed; reconnect after a dropped link."""
        assert self._http is not None
        while True:
            try:
                async with self._http.ws_connect(
                    f"/api/v1/ws?endpoint={quote(endpoint)}", heartbeat=10
                ) as ws:
                    async for message in ws:
                        if message.type is aiohttp.WSMsgType.TEXT:
                            self._seen(endpoint, json.loads(message.data))
            except aiohttp.ClientError as err:
                log.debug("cook.feed_lost", endpoint=endpoint, error=str(err))
            await asyncio.sleep(1.0)  # kds restarting: look again shortly

    def _seen(self, endpoint: str, message: dict[str, Any]) -> None:
        orders = message.get("orders") or ([message["order"]] if "order" in message else [])
        for order in orders:
            statuses = _statuses_at(order, endpoint)
            key = (order["id"], endpoint)
            open_ = [s for s in statuses if s not in FINAL]
            if open_ and all(s in WORKABLE for s in open_) and key not in self._working:
                task = asyncio.create_task(
                    self._work(order, endpoint, len(open_)), name=f"cook:{endpoint}:{order['id']}"
                )
                self._working[key] = task
                task.add_done_callback(lambda _t, k=key: self._working.pop(k, None))

    async def _work(self, order: dict[str, Any], endpoint: str, items: int) -> None:
        """One ticket: look at it, start it, cook it, bump it."""
        status = order.get("endpointStatuses", {}).get(endpoint)
        if status != "accepted":
            if not await self._set(order["id"], endpoint, "delivered"):  # the screen shows it
                return
            await self._sleep(self.pace.accept_delay(self._rng))
            # A ticket with an allergen is accepted only once the cook noted the allergen.
            if _has_allergens(order, endpoint) and not await self._post(
                order["id"], f"endpoints/{quote(endpoint)}/allergens/ack", None
            ):
                return
            if not await self._set(order["id"], endpoint, "accepted"):
                return
        await self._sleep(self.pace.cook_time(items, self._rng))
        if await self._set(order["id"], endpoint, "processed"):
            self.bumped += 1

    async def _set(self, order_id: str, endpoint: str, status: str) -> bool:
        """POST the station's status like a screen; False when kds refuses (someone else acted)."""
        return await self._post(order_id, f"endpoints/{quote(endpoint)}/status", {"status": status})

    async def _post(self, order_id: str, route: str, body: dict[str, Any] | None) -> bool:
        """POST to one of the order's routes like a screen; False when kds refuses it."""
        assert self._http is not None
        path = f"/api/v1/orders/{quote(order_id)}/{route}"
        try:
            async with self._http.post(path, json=body or {}) as response:
                if response.status == 200:
                    return True
                log.debug("cook.refused", order=order_id, route=route, answer=response.status)
        except aiohttp.ClientError as err:
            log.debug("cook.post_failed", order=order_id, route=route, error=str(err))
        return False


def _has_allergens(order: dict[str, Any], endpoint: str) -> bool:
    """Whether the order's items at `endpoint` carry an allergen not yet acknowledged there."""
    if endpoint in (order.get("allergenAcks") or {}):
        return False
    return any(
        item.get("allergens") and any(e["name"] == endpoint for e in item.get("endpoints", []))
        for item in order.get("items", [])
    )


def _statuses_at(order: dict[str, Any], endpoint: str) -> list[str]:
    # Items held back from the station (a course not fired yet) are not the cook's to work.
    held = {h.get("itemId") for h in order.get("holds") or () if h.get("endpoint") == endpoint}
    return [
        e["status"]
        for item in order.get("items", [])
        if item.get("id") not in held
        for e in item.get("endpoints", [])
        if e["name"] == endpoint
    ]
