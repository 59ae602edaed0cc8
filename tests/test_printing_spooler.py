"""Printing end to end: the real daemon, its outbox and spooler, virtual printers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.bus import Event
from kds.clock import ManualClock
from kds.config import Settings
from kds.printing.spooler import PrintSpooler
from kds.simulators.printer import PrintedJob, VirtualPrinter

from .util import FAST_PRINTER, advance_until, base_config, order_body, wait_until

#: The default retry backoff (1 s doubling to 30 s) on the test's manual clock, which
#: `advance_until(..., step=RETRY_STEP)` moves past each retry. The status timeout is real I/O
#: time: 2 s, so a loaded machine does not fail a ticket a test expects to print at once
#: (its retry would wait for a clock the test does not move).
PRINTER = {**FAST_PRINTER, "retry_initial": 1, "retry_max": 30, "status_timeout": 2}
RETRY_STEP = 5.0


@pytest.fixture
def printer_options() -> dict[str, dict[str, Any]]:
    """Extra printer settings per endpoint; tests override this fixture."""
    return {}


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    """Retries, probes and the fallback's re-check wait on the test's clock."""
    return Daemon(settings, clock=clock)


@pytest.fixture
def config_data(
    tmp_path: Path, printers: dict[str, VirtualPrinter], printer_options: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    def printer(name: str) -> dict[str, Any]:
        return {"address": printers[name].address, **PRINTER, **printer_options.get(name, {})}

    return base_config(
        tmp_path,
        endpoints=[
            {"name": "grill", "display": True, "printer": printer("grill")},  # screen + printer
            {"name": "cold", "display": True},
            {"name": "bar", "printer": printer("bar")},  # printer only: auto-processed
        ],
    )


def spooler(daemon: Daemon) -> PrintSpooler:
    return next(c for c in daemon.components if isinstance(c, PrintSpooler))


def history(daemon: Daemon, order_id: str, endpoint: str, item_id: int) -> list[str]:
    order = daemon.service.get(order_id)
    assert order is not None
    ep = order.item(item_id).endpoint(endpoint)  # type: ignore[union-attr]
    return [c.status.value for c in ep.status_changes]


async def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=body)
    data = await response.json()
    assert response.status == 201, data
    return data


def events(daemon: Daemon, type_: str) -> list[Event]:
    seen: list[Event] = []
    daemon.bus.subscribe(lambda e: seen.append(e) if e.type == type_ else None)
    return seen


def lines_after(job: PrintedJob, text: str) -> list[str]:
    texts = [line.text for line in job.lines]
    start = next(i for i, t in enumerate(texts) if text in t)
    return texts[start:]


async def test_ticket_has_everything_in_order_and_statuses_follow(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # The bytes that reach the printer decode to the order number, table, every item with its
    # modifiers and comment, in order; the grill goes sent → delivered, the printer-only bar
    # endpoint on to processed.
    order = await post(client, order_body("p1"))
    grill = (await printers["grill"].wait_for_jobs(1))[0]
    bar = (await printers["bar"].wait_for_jobs(1))[0]
    assert grill.complete and grill.cuts == 1
    texts = [line.text for line in grill.lines]
    assert (
        texts[0] == "GRILL"
        and texts[1] == f"#{order['number']}"
        and texts[2] == "Table 5 / Terrace"
    )
    assert lines_after(grill, "2 x Cheeseburger")[:4] == [
        "2 x Cheeseburger",
        "   + no onion",
        "   + extra cheese",
        "   ! medium rare",
    ]
    assert "Pilsner" not in grill.text and "Job " in grill.text
    assert "1 x Pilsner" in bar.text and "Cheeseburger" not in bar.text
    assert "REPRINT" not in grill.text + bar.text
    await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "processed")
    assert history(daemon, order["id"], "bar", 2) == ["created", "sent", "delivered", "processed"]
    await wait_until(lambda: history(daemon, order["id"], "grill", 1)[-1] == "delivered")
    assert history(daemon, order["id"], "grill", 1) == ["created", "sent", "delivered"]


async def test_void_and_transfer_tickets(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # A table change prints TRANSFER, a cancellation prints VOID with the cancelled items — where
    # the ticket was printed before, and marked so no cook mistakes it for a new order.
    order = await post(client, order_body("p2"))
    await printers["grill"].wait_for_jobs(1)
    await wait_until(lambda: history(daemon, order["id"], "grill", 1)[-1] == "delivered")
    from kds.model import Location, TicketInfo

    await daemon.service.update_ticket(
        order["id"], TicketInfo(name="Table 9", location=Location(table_name="9"))
    )
    transfer = (await printers["grill"].wait_for_jobs(2))[1]
    assert transfer.lines[0].text.strip() == "TRANSFER" and transfer.lines[0].invert
    assert "NOW AT: Table 9" in transfer.text and "2 x Cheeseburger" in transfer.text
    response = await client.delete(f"/api/v1/orders/{order['id']}")
    assert response.status in (200, 204)
    void = (await printers["grill"].wait_for_jobs(3))[2]
    assert void.lines[0].text.strip() == "VOID" and "VOID 2 x Cheeseburger" in void.text
    assert f"#{order['number']}" in void.text
    # The bar's drink was auto-processed when its ticket printed: it stays processed, but the
    # bar still gets a VOID (the drink was probably not poured yet) — once, however often cancelled.
    bar_jobs = await printers["bar"].wait_for_jobs(3)  # new, transfer, void
    assert bar_jobs[1].lines[0].text.strip() == "TRANSFER"
    bar_void = bar_jobs[2]
    assert bar_void.lines[0].text.strip() == "VOID" and "1 x Pilsner" in bar_void.text
    assert history(daemon, order["id"], "bar", 2)[-1] == "processed"
    assert (await client.delete(f"/api/v1/orders/{order['id']}")).status == 200
    await wait_until(lambda: daemon.outbox.pending_count == 0)
    assert len(printers["bar"].jobs) == 3


async def test_offline_printer_comes_back_ticket_prints_once(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # Offline → failed after the configured attempts (still processable); back online →
    # printed exactly once, failed → sent → delivered (→ processed: printer-only endpoint).
    await printers["bar"].set_mode("offline")
    order = await post(client, order_body("p3"))
    await advance_until(
        clock, lambda: history(daemon, order["id"], "bar", 2)[-1] == "failed", step=RETRY_STEP
    )
    assert daemon.service.get(order["id"]).item(2).endpoint("bar").is_processable  # type: ignore[union-attr]
    state = next(p for p in spooler(daemon).printer_states() if p["endpoint"] == "bar")
    assert state["state"] == "offline" and state["ok"] is False and state["queued"] == 1
    await printers["bar"].set_mode("online")
    await advance_until(clock, lambda: printers["bar"].jobs, step=RETRY_STEP)
    jobs = printers["bar"].jobs
    await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "processed")
    assert history(daemon, order["id"], "bar", 2) == [
        "created",
        "failed",
        "sent",
        "delivered",
        "processed",
    ]
    assert len(printers["bar"].jobs) == 1 and "REPRINT" not in jobs[0].text
    await wait_until(lambda: spooler(daemon).printer_states()[1]["state"] == "ok")


@pytest.mark.parametrize(
    ("mode", "state"),
    [("hang", "timeout"), ("paper_out", "paper_out"), ("cover_open", "cover_open")],
)
async def test_faults_detected_within_timeout_published_and_in_metrics(
    client: TestClient,
    daemon: Daemon,
    printers: dict[str, VirtualPrinter],
    clock: ManualClock,
    mode: str,
    state: str,
) -> None:
    # A hung printer is found out by its status timeout, paper out / cover open by its status;
    # each is a printer.status event (the screens' banner), a snapshot state and a metric.
    published = events(daemon, "printer.status")
    await printers["grill"].set_mode(mode)
    started = time.monotonic()
    order = await post(client, order_body("p4"))
    await wait_until(lambda: any(e.data["printer"]["state"] == state for e in published))
    assert time.monotonic() - started < PRINTER["status_timeout"] + 2
    event = next(e for e in published if e.data["printer"]["state"] == state)
    assert event.data["printer"]["endpoint"] == "grill" and event.data["printer"]["ok"] is False
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_printer_up{endpoint="grill"} 0.0' in metrics
    assert f'kds_printer_state{{endpoint="grill",state="{state}"}} 1.0' in metrics
    ready = await (await client.get("/readyz")).json()
    assert ready["status"] == "degraded" and ready["components"]["printers"]["faults"] == ["grill"]
    assert printers["grill"].jobs == []
    await printers["grill"].set_mode("online")
    await advance_until(clock, lambda: printers["grill"].jobs, step=RETRY_STEP)
    job = printers["grill"].jobs[0]
    assert "REPRINT" not in job.text  # nothing had been sent: a clean retry
    await wait_until(lambda: published[-1].data["printer"]["state"] == "ok")
    await wait_until(lambda: history(daemon, order["id"], "grill", 1)[-1] == "delivered")
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_printer_up{endpoint="grill"} 1.0' in metrics
    assert 'kds_print_jobs_total{endpoint="grill",result="printed"} 1.0' in metrics


async def test_connection_dropped_mid_job_reprints_marked_reprint(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # The printer drops the connection while the ticket is being sent: it may have printed
    # part of it, so the retry says REPRINT — never a second ticket that looks new.
    await printers["bar"].set_mode("drop_mid_job", times=1, drop_after=40)
    order = await post(client, order_body("p5"))
    await advance_until(clock, lambda: len(printers["bar"].jobs) >= 2, step=RETRY_STEP)
    jobs = printers["bar"].jobs
    assert not jobs[0].complete and "REPRINT" not in jobs[0].text
    assert (
        jobs[1].complete
        and jobs[1].lines[0].text.strip() == "REPRINT"
        and "1 x Pilsner" in jobs[1].text
    )
    await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "processed")
    assert history(daemon, order["id"], "bar", 2) == [
        "created",
        "sent",
        "failed",
        "sent",
        "delivered",
        "processed",
    ]


class TestFallback:
    @pytest.fixture
    def printer_options(self, printers: dict[str, VirtualPrinter]) -> dict[str, dict[str, Any]]:
        return {"bar": {"fallback": printers["spare"].address, "fallback_after": 2}}

    async def test_fallback_takes_over_and_hands_back(
        self,
        client: TestClient,
        daemon: Daemon,
        printers: dict[str, VirtualPrinter],
        clock: ManualClock,
    ) -> None:
        # The bar printer is out of paper: after 2 failures the ticket prints on the spare printer,
        # the next ticket goes straight there; once the bar printer is back, tickets return to it
        # when the primary is checked again, retry_max (30 s) after the last check.
        await printers["bar"].set_mode("paper_out")
        first = await post(client, order_body("f1"))
        await advance_until(clock, lambda: printers["spare"].jobs, step=1)
        job = printers["spare"].jobs[0]
        assert "BAR" in job.text and "1 x Pilsner" in job.text and "bar printer down" in job.text
        await wait_until(lambda: history(daemon, first["id"], "bar", 2)[-1] == "processed")
        assert spooler(daemon).printer_states()[1]["fallbackActive"] is True
        await post(client, order_body("f2"))
        await printers["spare"].wait_for_jobs(2)
        await printers["bar"].set_mode("online")
        await clock.advance(29)  # not yet: still within retry_max of the last check
        await post(client, order_body("f3"))
        await printers["spare"].wait_for_jobs(3)
        assert printers["bar"].jobs == []
        await clock.advance(2)
        await post(client, order_body("f4"))
        job = (await printers["bar"].wait_for_jobs(1))[0]
        assert "#" in job.text and "bar printer down" not in job.text
        assert len(printers["spare"].jobs) == 3
        assert spooler(daemon).printer_states()[1]["fallbackActive"] is False

    async def test_fallback_must_be_a_printer(
        self, tmp_path: Path, printers: dict[str, VirtualPrinter]
    ) -> None:
        # A fallback naming an endpoint without a printer, or a malformed address, is refused up front.
        from kds.config import ConfigError, settings_from_dict

        def config(fallback: str) -> dict[str, Any]:
            return base_config(
                tmp_path,
                routing={"default_endpoint": "grill"},
                endpoints=[
                    {
                        "name": "grill",
                        "display": True,
                        "printer": {"address": printers["grill"].address, "fallback": fallback},
                    },
                    {"name": "cold", "display": True},
                ],
            )

        with pytest.raises(
            ConfigError, match="grill.printer.fallback: 'cold' is not an endpoint with a printer"
        ):
            settings_from_dict(config("cold"))
        with pytest.raises(
            ConfigError, match="grill.printer.fallback: a printer cannot be its own fallback"
        ):
            settings_from_dict(config("grill"))
        with pytest.raises(ConfigError, match="fallback"):
            settings_from_dict(config("nowhere:"))


def drink_order(i: int) -> dict[str, Any]:
    return order_body(f"h{i}", items=[{"id": 1, "plu": {"name": f"Drink {i}", "group": "Drinks"}}])


async def test_tickets_waiting_for_a_printer_go_out_together_over_one_connection(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # Five tickets wait for the bar printer; when it is back they go out over one connection, in
    # order, each decoded from the bytes, none marked REPRINT; their `sent` and attempts are
    # recorded in one commit before the first byte, `delivered` → `processed` and done in one after.
    await printers["bar"].set_mode("offline")
    orders = [await post(client, drink_order(i)) for i in range(5)]
    await advance_until(
        clock,
        lambda: all(history(daemon, o["id"], "bar", 1)[-1] == "failed" for o in orders),
        step=RETRY_STEP,
    )
    commits, connections = daemon.store.health()["commits"], printers["bar"].connections
    await printers["bar"].set_mode("online")
    await advance_until(clock, lambda: printers["bar"].jobs, step=RETRY_STEP)
    await wait_until(lambda: daemon.outbox.pending_count == 0)
    [job] = printers["bar"].jobs
    assert [t.splitlines()[1] for t in job.tickets] == [f"#{o['number']}" for o in orders]
    assert [f"1 x Drink {i}" in t for i, t in enumerate(job.tickets)] == [True] * 5
    assert job.complete and job.cuts == 5 and "REPRINT" not in job.text
    assert printers["bar"].connections - connections == 1
    for order in orders:
        assert history(daemon, order["id"], "bar", 1) == [
            "created",
            "failed",
            "sent",
            "delivered",
            "processed",
        ]
    assert daemon.store.health()["commits"] - commits == 2


async def test_an_order_cancelled_while_its_round_waits_for_the_printer_is_left_out(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # Two tickets wait for the bar printer and were rendered for one round; the second order is
    # cancelled while kds waits for the (slow) printer's status: the round prints the first
    # ticket only, the second has nothing left and is done without paper — and without a VOID,
    # as nothing of it ever reached the printer.
    await printers["bar"].set_mode("offline")
    first, second = [await post(client, drink_order(i)) for i in range(2)]
    await advance_until(
        clock,
        lambda: all(history(daemon, o["id"], "bar", 1)[-1] == "failed" for o in (first, second)),
        step=RETRY_STEP,
    )
    await printers["bar"].set_mode("slow", delay=0.5, times=1)
    connections = printers["bar"].connections
    await advance_until(clock, lambda: printers["bar"].connections > connections, step=RETRY_STEP)
    assert (await client.delete(f"/api/v1/orders/{second['id']}")).status == 200
    await wait_until(lambda: daemon.outbox.pending_count == 0, timeout=10)
    tickets = printers["bar"].tickets()
    assert len(tickets) == 1 and "1 x Drink 0" in tickets[0]
    assert history(daemon, first["id"], "bar", 1)[-1] == "processed"
    assert history(daemon, second["id"], "bar", 1)[-1] == "processSkipped"


async def test_hundred_tickets_queued_while_offline_print_in_order(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # 100 tickets for a printer that is offline for a while all print once it returns, in order,
    # each exactly once, none marked REPRINT (in batches: several tickets per connection).
    await printers["bar"].set_mode("offline")
    numbers = [(await post(client, drink_order(i)))["number"] for i in range(100)]
    await wait_until(lambda: spooler(daemon).queued("bar") == 100)
    await printers["bar"].set_mode("online")
    await advance_until(clock, lambda: printers["bar"].jobs, step=RETRY_STEP)  # the head's retry
    await printers["bar"].wait_for(lambda p: len(p.tickets()) >= 100, timeout=60)
    tickets = printers["bar"].tickets()  # the rest follow at once
    assert len(tickets) == 100 and len(printers["bar"].jobs) < 100
    printed = [int(ticket.splitlines()[1].lstrip("#")) for ticket in tickets]
    assert printed == numbers
    assert [f"1 x Drink {i}" in ticket for i, ticket in enumerate(tickets)] == [True] * 100
    assert not any("REPRINT" in ticket for ticket in tickets)
    await wait_until(lambda: spooler(daemon).queued("bar") == 0)


async def test_websocket_snapshot_and_printer_events(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # Screens get the printers' states in the snapshot and each fault as it happens.
    ws = await client.ws_connect("/api/v1/ws")
    snapshot = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert {p["endpoint"] for p in snapshot["printers"]} == {"grill", "bar"}
    await printers["bar"].set_mode("paper_out")
    await post(client, order_body("w1"))
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        if message["type"] == "printer.status":
            break
    assert message["printer"]["endpoint"] == "bar" and message["printer"]["state"] == "paper_out"
    assert message["printer"]["detail"] == "out of paper"
    await ws.close()


async def test_void_waiting_through_an_outage_prints_even_after_the_order_was_archived(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], clock: ManualClock
) -> None:
    # The order is cancelled while the grill printer is down and archived before it returns:
    # the VOID ticket is still printed, from the archive.
    from datetime import timedelta

    from kds.model import utcnow

    order = await post(client, order_body("a1"))
    await printers["grill"].wait_for_jobs(1)
    await wait_until(lambda: history(daemon, order["id"], "grill", 1)[-1] == "delivered")
    await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "processed")
    await printers["grill"].set_mode("offline")
    assert (await client.delete(f"/api/v1/orders/{order['id']}")).status in (200, 204)
    await wait_until(lambda: spooler(daemon).printer_states()[0]["state"] == "offline")
    assert await daemon.service.archive_finished(now=utcnow() + timedelta(days=30)) == 1
    assert daemon.service.get(order["id"]) is None
    await printers["grill"].set_mode("online")
    await advance_until(clock, lambda: len(printers["grill"].jobs) >= 2, step=RETRY_STEP)
    void = printers["grill"].jobs[1]
    assert void.lines[0].text.strip() == "VOID" and "VOID 2 x Cheeseburger" in void.text


class TestRetryNow:
    @pytest.fixture
    def printer_options(self) -> dict[str, dict[str, Any]]:
        return {
            "bar": {"retry_initial": 30, "retry_max": 30, "attempts": 1}
        }  # only "retry now" beats the backoff

    async def test_retry_route_prints_waiting_tickets_without_waiting_out_the_backoff(
        self, client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
    ) -> None:
        # The bar printer was off; once it is back, POST …/retry prints the waiting ticket at
        # once (the next automatic retry is 30 s away). GET /api/v1/printers shows each state.
        await printers["bar"].set_mode("offline")
        order = await post(client, order_body("r1"))
        await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "failed")
        listing = await (await client.get("/api/v1/printers")).json()
        states = {p["endpoint"]: p for p in listing["items"]}
        assert listing["totalCount"] == 2 and set(states) == {"grill", "bar"}
        assert (
            states["bar"]["state"] == "offline"
            and states["bar"]["ok"] is False
            and states["bar"]["queued"] == 1
        )
        await printers["bar"].set_mode("online")
        started = time.monotonic()
        response = await client.post("/api/v1/printers/bar/retry")
        assert response.status == 202 and await response.json() == {"endpoint": "bar", "queued": 1}
        job = (await printers["bar"].wait_for_jobs(1))[0]
        assert time.monotonic() - started < 10 and "1 x Pilsner" in job.text
        await wait_until(lambda: history(daemon, order["id"], "bar", 2)[-1] == "processed")

    @pytest.mark.parametrize("endpoint", ["cold", "nope"])
    async def test_retry_for_an_endpoint_without_a_printer_is_404(
        self, client: TestClient, endpoint: str
    ) -> None:
        response = await client.post(f"/api/v1/printers/{endpoint}/retry")
        assert response.status == 404
        assert "has no printer" in (await response.json())["detail"]


class TestProbe:
    async def test_a_missing_printer_is_offline_at_start_not_ok_until_the_first_ticket(
        self, aiohttp_client: Any, daemon: Daemon, printers: dict[str, VirtualPrinter]
    ) -> None:
        # The bar printer is unplugged before kds starts: the screens must say so at once,
        # not "ok" until a ticket fails. The grill's answers its status: ok.
        await printers["bar"].set_mode("offline")
        await aiohttp_client(daemon.app)
        states = {p["endpoint"]: p for p in spooler(daemon).printer_states()}
        assert states["bar"]["state"] == "offline" and states["bar"]["ok"] is False
        assert states["grill"]["state"] == "ok" and states["grill"]["ok"] is True
        assert printers["grill"].jobs == [] and printers["bar"].jobs == []  # a probe prints nothing

    async def test_an_idle_printer_is_probed_and_its_fault_published(
        self,
        client: TestClient,
        daemon: Daemon,
        printers: dict[str, VirtualPrinter],
        clock: ManualClock,
    ) -> None:
        # Paper runs out while no ticket is waiting: the status query every probe_interval (30 s)
        # finds it and publishes it (the screens' banner); refilled, it is ok again — without a
        # ticket.
        published = events(daemon, "printer.status")
        interval = 30.0  # the default probe_interval
        await printers["grill"].set_mode("paper_out")
        await clock.advance(interval - 1)
        assert not published
        await advance_until(
            clock,
            lambda: any(e.data["printer"]["state"] == "paper_out" for e in published),
            step=interval,
        )
        await printers["grill"].set_mode("online")
        await advance_until(
            clock, lambda: published[-1].data["printer"]["state"] == "ok", step=interval
        )
        assert printers["grill"].jobs == [] and printers["grill"].discarded == []
