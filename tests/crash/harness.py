"""The crash harness: steady load on a `kds run` subprocess, a ledger of what it acknowledged, checks.

`Load` runs concurrent clients against the daemon: ingest workers post native
orders (and create PORTOS tickets in the simulator, which kds polls in), flow
workers walk each order through the kitchen (bump, refuse an item, or cancel),
and a websocket listener records the feed's sequence numbers. Every request is
written to the `Ledger` before it is sent (attempted) and again when the daemon
answered 2xx (acknowledged). A SIGKILL cuts requests off mid-flight; their
outcome is unknown, which the checks allow for: an unacknowledged order may or
may not be stored, but if it is, it must be whole.

`check_orders` then compares what the restarted daemon serves with the ledger;
`check_prints` compares the print outbox with what the virtual printer printed;
`check_writebacks` compares kds's PORTOS orders with the simulator's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from kds.model import OrderStatus
from kds.states import FINAL, TransitionError, apply_transition

GRILL, BAR = "grill", "bar"
#: Each order gets one walk through the kitchen; steps are (route, status).
FLOWS: dict[str, list[tuple[str, str]]] = {
    "bump": [("endpoint", "delivered"), ("endpoint", "accepted"), ("endpoint", "processed")],
    "refuse": [("item", "delivered"), ("item", "refused")],
    "cancel": [("delete", "processSkipped")],
    "none": [],
}
FLOW_WEIGHTS = {"bump": 5, "refuse": 2, "cancel": 1, "none": 1}
PORTOS_PLUS = {101: ("Cheeseburger", [GRILL]), 102: ("Fries", [GRILL]), 201: ("Pilsner", [BAR])}
_FINAL = {s.value for s in FINAL}
_JOB_LINE = re.compile(r"^Job (\d+)\b", re.M)
#: Transport failures: the daemon died under the request, its outcome is unknown.
CUT_OFF = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


@dataclass(frozen=True)
class Ack:
    """A status change (or cancel) the daemon acknowledged with a 2xx."""

    order_id: str
    route: str  # endpoint | item | delete
    status: str
    item_id: int | None
    round: int


@dataclass
class Ledger:
    """Everything the client sent and everything the daemon acknowledged, across rounds."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalId -> body sent
    orders: dict[str, str] = field(default_factory=dict)  # externalId -> kds id (acknowledged)
    attempted: dict[str, set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )  # kds id -> statuses asked
    acks: list[Ack] = field(default_factory=list)
    portos_orders: set[str] = field(default_factory=set)  # kds ids of orders polled from PORTOS
    tickets: int = 0  # PORTOS tickets created in the simulator
    max_seq: int = 0  # highest feed seq seen before the last kill
    problems: list[str] = field(default_factory=list)  # wrong answers seen during load
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def acknowledged(self) -> int:
        """Orders plus status changes acknowledged so far (the kill trigger counts these)."""
        return len(self.orders) + len(self.acks)


def native_order(external_id: str, rng: random.Random) -> dict[str, Any]:
    """A native order: one to three grill items and zero to two drinks, named after the order."""
    items: list[dict[str, Any]] = []
    for n in range(rng.randint(1, 3)):
        items.append(
            {
                "id": len(items) + 1,
                "plu": {"name": f"Burger {n} {external_id}", "code": 101},
                "quantity": {"amount": rng.choice([1, 2, 0.5]), "unit": "pcs"},
                "comment": rng.choice([None, "medium rare", "<b>no salt</b>"]),
                "modifiers": rng.sample(
                    ["no onion", "extra cheese", "gluten free"], rng.randint(0, 2)
                ),
                "courseNumber": rng.choice([None, 1, 2]),
            }
        )
    for n in range(rng.randint(0, 2)):
        items.append(
            {
                "id": len(items) + 1,
                "plu": {"name": f"Drink {n} {external_id}", "code": 201, "group": "Drinks"},
                "quantity": {"amount": 1, "unit": "pcs"},
            }
        )
    rng.shuffle(items)
    return {
        "id": external_id,
        "deviceName": "POS1",
        "user": {"userName": "crash"},
        "ticket": {
            "id": f"T-{external_id}",
            "name": f"Table {rng.randint(1, 30)}",
            "purchaseType": "walkIn",
        },
        "items": items,
    }


def expected_endpoints(item: dict[str, Any]) -> list[str]:
    """Where the crash config routes a native item: drinks to the bar printer, the rest to the grill."""
    return [BAR] if item["plu"].get("group") == "Drinks" else [GRILL]


class Load:
    """Concurrent clients of one daemon run; stop() cancels them (after the kill)."""

    def __init__(
        self,
        url: str,
        ledger: Ledger,
        rng: random.Random,
        round_no: int,
        *,
        sim: Any = None,
        ingest_workers: int = 3,
        flow_workers: int = 4,
    ) -> None:
        self.url = url
        self.ledger = ledger
        self.rng = rng
        self.round = round_no
        self.sim = sim
        self.ingest_workers = ingest_workers
        self.flow_workers = flow_workers
        self.flows: asyncio.Queue[tuple[str, int | None]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession | None = None
        self.feed_ready = asyncio.Event()

    async def start(self) -> None:
        """Open the feed, then start the workers."""
        self.http = aiohttp.ClientSession(self.url, timeout=aiohttp.ClientTimeout(total=15))
        feed = asyncio.create_task(self._feed(), name="crash:feed")
        self.tasks.append(feed)
        ready = asyncio.create_task(self.feed_ready.wait())
        await asyncio.wait({feed, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not self.feed_ready.is_set():
            error = feed.exception() if feed.done() else "no snapshot within 20 s"
            raise AssertionError(f"round {self.round}: the feed did not open: {error!r}")
        self.tasks += [
            asyncio.create_task(self._ingest(), name=f"crash:ingest{i}")
            for i in range(self.ingest_workers)
        ]
        self.tasks += [
            asyncio.create_task(self._walk(), name=f"crash:flow{i}")
            for i in range(self.flow_workers)
        ]

    async def stop(self) -> None:
        """Cancel every worker and close the session."""
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, (*CUT_OFF, websockets.ConnectionClosed, OSError)
            ):
                self.ledger.problems.append(f"round {self.round}: load worker crashed: {result!r}")
        if self.http is not None:
            await self.http.close()

    async def _ingest(self) -> None:
        assert self.http is not None
        while True:
            n = next(self.ledger.counter)
            external_id = f"c{n}"
            body = native_order(external_id, self.rng)
            self.ledger.bodies[external_id] = body
            try:
                async with self.http.post("/api/v1/orders", json=body) as response:
                    status, text = response.status, await response.text()
            except CUT_OFF:
                return
            if status in (200, 201):
                order = json.loads(text)
                self.ledger.orders[external_id] = order["id"]
                self.flows.put_nowait((order["id"], _first_grill_item(order)))
            else:
                self.ledger.problems.append(
                    f"round {self.round}: ingest {external_id} answered {status}: {text[:200]}"
                )
            if self.sim is not None and n % 3 == 0:
                self._portos_ticket()

    def _portos_ticket(self) -> None:
        codes = [self.rng.choice([101, 102]) for _ in range(self.rng.randint(1, 2))]
        codes += [201] * self.rng.randint(0, 1)
        self.sim.create_ticket(
            [{"pluCode": c, "quantity": 1} for c in codes], name=f"Crash {self.ledger.tickets}"
        )
        self.ledger.tickets += 1

    async def _walk(self) -> None:
        assert self.http is not None
        names, weights = zip(*FLOW_WEIGHTS.items())
        while True:
            order_id, item_id = await self.flows.get()
            flow = FLOWS[self.rng.choices(names, weights)[0]]
            for route, status in flow:
                if not await self._step(order_id, route, status, item_id):
                    break

    async def _step(self, order_id: str, route: str, status: str, item_id: int | None) -> bool:
        """One request of a flow; False when it was cut off or refused."""
        assert self.http is not None
        if route == "item" and item_id is None:
            return False
        self.ledger.attempted[order_id].add(status)
        if route == "delete":
            request = self.http.delete(
                f"/api/v1/orders/{order_id}", params={"reason": "crash test"}
            )
        elif route == "endpoint":
            request = self.http.post(
                f"/api/v1/orders/{order_id}/endpoints/{GRILL}/status", json={"status": status}
            )
        else:
            request = self.http.post(
                f"/api/v1/orders/{order_id}/items/{item_id}/status", json={"status": status}
            )
        try:
            async with request as response:
                code, text = response.status, await response.text()
        except CUT_OFF:
            return False
        if code != 200:
            self.ledger.problems.append(
                f"round {self.round}: {route} {status} on {order_id} answered {code}: {text[:200]}"
            )
            return False
        self.ledger.acks.append(
            Ack(order_id, route, status, item_id if route == "item" else None, self.round)
        )
        return True

    async def _feed(self) -> None:
        """Record feed seqs (strictly increasing per connection); hand PORTOS orders to the flows."""
        ws_url = self.url.replace("http://", "ws://") + "/api/v1/ws"
        last = 0
        try:
            async with websockets.connect(ws_url, open_timeout=5, max_size=None) as ws:
                async for text in ws:
                    message = json.loads(text)
                    seq = message.get("seq")
                    if seq is not None:
                        if not message["type"].startswith("snapshot") and seq <= last:
                            self.ledger.problems.append(
                                f"round {self.round}: feed seq went from {last} to {seq}"
                            )
                        last = max(last, seq)
                        self.ledger.max_seq = max(self.ledger.max_seq, seq)
                    if message["type"] == "snapshot":
                        self.feed_ready.set()
                    elif (
                        message["type"] == "order.created"
                        and message["order"]["source"] == "portos"
                    ):
                        order = message["order"]
                        self.ledger.portos_orders.add(order["id"])
                        self.flows.put_nowait((order["id"], _first_grill_item(order)))
        except (websockets.ConnectionClosed, OSError):
            if not self.feed_ready.is_set():
                raise
            return


def _first_grill_item(order: dict[str, Any]) -> int | None:
    return next(
        (i["id"] for i in order["items"] if [e["name"] for e in i["endpoints"]] == [GRILL]), None
    )


async def fetch_orders(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every order the daemon serves, page by page."""
    orders: list[dict[str, Any]] = []
    while True:
        async with http.get(
            "/api/v1/orders", params={"$skip": str(len(orders)), "$take": "1000"}
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        orders += page["items"]
        if not page["items"] or len(orders) >= page["totalCount"]:
            return orders


def check_order_whole(order: dict[str, Any], body: dict[str, Any] | None) -> list[str]:
    """Nothing half-written: items, item endpoints and histories complete and consistent."""
    problems: list[str] = []
    name = f"order {order['externalId']} ({order['id']})"
    if not order["items"]:
        problems.append(f"{name} has no items")
    for item in order["items"]:
        if not item["endpoints"]:
            problems.append(f"{name} item {item['id']} has no endpoint")
        for ep in item["endpoints"]:
            where = f"{name} item {item['id']} at {ep['name']}"
            history = [c["status"] for c in ep["statusChanges"]]
            if not history or history[0] != "created":
                problems.append(f"{where}: history does not start with created: {history}")
                continue
            if ep["status"] != history[-1] or ep["orderItemStatus"] != ep["status"]:
                problems.append(f"{where}: status {ep['status']} but history ends {history[-1]}")
            for old, new in itertools.pairwise(history):
                try:
                    # recall=True admits the one exit from a final status (processed → accepted),
                    # which a screen (or the fuzzer) may take with {"recall": true}.
                    if apply_transition(OrderStatus(old), OrderStatus(new), recall=True) is None:
                        problems.append(f"{where}: repeated status {new} in history {history}")
                except TransitionError:
                    problems.append(f"{where}: illegal step {old} -> {new} in history {history}")
            if ep["isProcessed"] != (ep["status"] == "processed"):
                problems.append(
                    f"{where}: isProcessed {ep['isProcessed']} with status {ep['status']}"
                )
    all_final = all(e["status"] in _FINAL for i in order["items"] for e in i["endpoints"])
    if order["isProcessed"] != all_final:
        problems.append(
            f"{name}: isProcessed {order['isProcessed']} but every item final is {all_final}"
        )
    if body is not None:
        sent = {i["id"]: i for i in body["items"]}
        stored = {i["id"]: i for i in order["items"]}
        if set(sent) != set(stored):
            problems.append(f"{name}: items {sorted(stored)} stored, {sorted(sent)} sent")
        for item_id in set(sent) & set(stored):
            a, b = sent[item_id], stored[item_id]
            amount = float(a.get("quantity", {}).get("amount", 1))
            if b["plu"]["name"] != a["plu"]["name"] or float(b["quantity"]["amount"]) != amount:
                problems.append(
                    f"{name} item {item_id}: stored {b['plu']} x {b['quantity']}, sent {a['plu']} x {a['quantity']}"
                )
            if b.get("comment") != a.get("comment") or b["modifiers"] != a.get("modifiers", []):
                problems.append(
                    f"{name} item {item_id}: comment/modifiers differ from what was sent"
                )
            if [e["name"] for e in b["endpoints"]] != expected_endpoints(a):
                problems.append(
                    f"{name} item {item_id}: routed to {[e['name'] for e in b['endpoints']]}"
                )
    return problems


def check_orders(ledger: Ledger, orders: list[dict[str, Any]]) -> tuple[list[str], Counter[str]]:
    """Every acknowledged order and change is there, nothing half-written, nothing invented."""
    problems: list[str] = []
    stats: Counter[str] = Counter()
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for order in orders:
        by_key[(order["source"], order["externalId"])].append(order)
    by_id = {o["id"]: o for o in orders}
    for (source, external_id), found in by_key.items():
        if len(found) > 1:
            problems.append(f"{source} order {external_id} stored {len(found)} times")
    for external_id, order_id in ledger.orders.items():
        found = by_key.get(("native", external_id))
        if not found:
            problems.append(f"acknowledged order {external_id} ({order_id}) is missing")
        elif found[0]["id"] != order_id:
            problems.append(
                f"order {external_id} has id {found[0]['id']}, acknowledged as {order_id}"
            )
    for order in orders:
        body = None
        if order["source"] == "native":
            body = ledger.bodies.get(order["externalId"])
            if body is None:
                problems.append(f"order {order['externalId']} is stored but was never sent")
            elif order["externalId"] not in ledger.orders:
                stats["unacknowledged orders stored whole"] += 1
        problems += check_order_whole(order, body)
        stats["item endpoints checked"] += sum(len(i["endpoints"]) for i in order["items"])
    stats["orders checked"] = len(orders)
    stats["acknowledged orders"] = len(ledger.orders)
    for ack in ledger.acks:
        order = by_id.get(ack.order_id)
        if order is None:
            problems.append(f"order {ack.order_id} of an acknowledged {ack.status} is missing")
            continue
        stats[f"acknowledged {ack.route} {ack.status}"] += 1
        if ack.route == "delete":
            open_ = [
                f"{i['id']}@{e['name']}={e['status']}"
                for i in order["items"]
                for e in i["endpoints"]
                if e["status"] not in _FINAL
            ]
            if open_:
                problems.append(
                    f"order {ack.order_id} was cancelled (acknowledged) but has open items {open_}"
                )
            continue
        targets = [
            e
            for i in order["items"]
            for e in i["endpoints"]
            if (ack.item_id is None or i["id"] == ack.item_id)
            and (ack.route == "item" or e["name"] == GRILL)
        ]
        for ep in targets:
            history = [c["status"] for c in ep["statusChanges"]]
            if ack.status not in history:
                problems.append(
                    f"acknowledged {ack.status} of order {ack.order_id} ({ack.route}) is missing: {history}"
                )
    for order in orders:
        asked = ledger.attempted.get(order["id"], set())
        for item in order["items"]:
            for ep in item["endpoints"]:
                if ep["name"] != GRILL:
                    continue
                extra = {c["status"] for c in ep["statusChanges"]} - {"created", "sent"} - asked
                if extra:
                    problems.append(
                        f"order {order['id']} has grill statuses nobody asked for: {sorted(extra)}"
                    )
    return problems, stats


async def read_outbox(db: Path | str, kind: str) -> list[Any]:
    """The outbox rows of `kind`: from the SQLite file (read-only) or the PostgreSQL URL."""
    if isinstance(db, str):
        import asyncpg

        conn = await asyncpg.connect(db)
        try:
            return list(
                await conn.fetch(
                    "SELECT id, target, order_id, payload, attempts, done_at FROM outbox"
                    " WHERE kind = $1 ORDER BY id",
                    kind,
                )
            )
        finally:
            await conn.close()
    return _read_sqlite_outbox(db, kind)


def _read_sqlite_outbox(db_path: Path, kind: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT id, target, order_id, payload, attempts, done_at FROM outbox WHERE kind = ? ORDER BY id",
            (kind,),
        ).fetchall()
    finally:
        conn.close()


def printed_job_ids(jobs: Iterable[Any]) -> dict[int, list[bool]]:
    """Per outbox entry id, one flag per printed ticket carrying it: was it marked REPRINT?

    A printer job (one connection) may carry several tickets: each is judged on its own.
    """
    seen: dict[int, list[bool]] = defaultdict(list)
    for job in jobs:
        if not job.printed:
            continue
        for text in job.tickets:
            for job_id in _JOB_LINE.findall(text):
                seen[int(job_id)].append("REPRINT" in text)
    return seen


def cancelled_before_printing(
    row: Any, orders: dict[str, dict[str, Any]], voided: set[tuple[str, str, int]]
) -> bool:
    """A new ticket whose items were all cancelled before it printed: nothing left to print.

    Each item was either cancelled before it was ever sent (the kitchen never heard of it) or
    after an attempt that may have put it on paper, and then a VOID for it printed (kds does not
    print a cancelled item again just to void it). `voided`: (order, target, item) of printed VOIDs.
    """
    payload = json.loads(row["payload"])
    order = orders.get(row["order_id"])
    # `attempts` may be 1: kds can die between recording the attempt and writing the first byte.
    if payload.get("ticket", "new") != "new" or order is None or row["done_at"] is None:
        return False
    wanted = set(payload.get("itemIds") or [])
    eps = [
        (i["id"], e)
        for i in order["items"]
        if i["id"] in wanted
        for e in i["endpoints"]
        if e["name"] == row["target"]
    ]
    return bool(eps) and all(
        e["status"] == "processSkipped"
        and (
            "sent" not in {c["status"] for c in e["statusChanges"]}
            or (row["order_id"], row["target"], item_id) in voided
        )
        for item_id, e in eps
    )


def printed_voids(
    rows: list[Any], seen: dict[int, list[bool]], orders: dict[str, dict[str, Any]]
) -> set[tuple[str, str, int]]:
    """(order, target, item) of every VOID ticket that reached the printer."""
    voided: set[tuple[str, str, int]] = set()
    for row in rows:
        payload = json.loads(row["payload"])
        if payload.get("ticket") != "void" or not seen.get(row["id"]):
            continue
        item_ids = payload.get("itemIds")
        if item_ids is None:  # every item of the endpoint
            order = orders.get(row["order_id"], {"items": []})
            item_ids = [
                i["id"]
                for i in order["items"]
                if any(e["name"] == row["target"] for e in i["endpoints"])
            ]
        voided.update((row["order_id"], row["target"], item_id) for item_id in item_ids)
    return voided


def check_prints(
    rows: list[sqlite3.Row], jobs: Iterable[Any], orders: list[dict[str, Any]]
) -> tuple[list[str], Counter[str]]:
    """Every queued print reached the printer at least once; repeats are marked REPRINT."""
    problems: list[str] = []
    stats: Counter[str] = Counter()
    seen = printed_job_ids(jobs)
    by_id = {o["id"]: o for o in orders}
    voided = printed_voids(rows, seen, by_id)
    for row in rows:
        prints = seen.get(row["id"], [])
        ticket = json.loads(row["payload"]).get("ticket", "new")
        stats[f"{ticket} tickets queued"] += 1
        if not prints and cancelled_before_printing(row, by_id, voided):
            stats["tickets cancelled before printing"] += 1
            continue
        if not prints:
            order = by_id.get(row["order_id"], {"items": []})
            history = {
                i["id"]: [c["status"] for c in e["statusChanges"]]
                for i in order["items"]
                for e in i["endpoints"]
                if e["name"] == row["target"]
            }
            problems.append(
                f"print job {row['id']} ({row['payload']}, {row['attempts']} attempts, "
                f"done {row['done_at']}) never reached the printer; {row['target']} histories: {history}"
            )
            continue
        unmarked = prints.count(False)
        if unmarked > 1:
            problems.append(
                f"print job {row['id']} printed {unmarked} times without a REPRINT mark"
            )
        stats["reprints marked REPRINT"] += prints.count(True)
    return problems, stats


def check_writebacks(orders: list[dict[str, Any]], sim: Any) -> tuple[list[str], Counter[str]]:
    """Every PORTOS item endpoint went through exactly kds's statuses at the simulator."""
    problems: list[str] = []
    stats: Counter[str] = Counter()
    portos = [o for o in orders if o["source"] == "portos"]
    for order in portos:
        if order["externalId"] not in sim.orders:
            problems.append(f"PORTOS order {order['externalId']} is unknown to the simulator")
            continue
        for item in order["items"]:
            for ep in item["endpoints"]:
                ours = [c["status"] for c in ep["statusChanges"]]
                theirs = sim.history(order["externalId"], item["id"], ep["name"])
                if ours != theirs:
                    problems.append(
                        f"PORTOS order {order['externalId']} item {item['id']} at {ep['name']}: kds {ours}, PORTOS {theirs}"
                    )
                stats["PORTOS status changes written back"] += len(theirs) - 1
    known = {o["externalId"] for o in portos}
    missing = [order_id for order_id in sim.orders if order_id not in known]
    if missing:
        problems.append(f"PORTOS orders never polled in: {missing[:5]} ({len(missing)})")
    stats["PORTOS orders"] = len(portos)
    return problems, stats


def writebacks_match(orders: list[dict[str, Any]], sim: Any) -> bool:
    """check_writebacks without problems (for waiting)."""
    return not check_writebacks(orders, sim)[0]
