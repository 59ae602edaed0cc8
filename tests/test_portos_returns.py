"""A returned or cancelled PORTOS line reaches the kitchen as a VOID, never as a new dish and
never silently (issue 14, item 5)."""

from __future__ import annotations

from pathlib import Path

import websockets
from aiohttp.test_utils import TestClient, TestServer

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import settings_from_dict
from kds.model import OrderStatus
from kds.simulators.portos import PortosSimulator
from kds.simulators.printer import VirtualPrinter

from .test_portos_e2e import (  # noqa: F401
    TOKEN,
    config_data,
    daemon,
    kds_orders,
    portos,
    portos_auth,
    recv_until,
    sim,
    ws_url,
)
from .util import base_config, next_poll, polls, printed_grill, until

S = OrderStatus


def making(daemon: Daemon) -> list[tuple[str, object]]:
    """What the kitchen has to make: (dish, quantity) of every item not voided."""
    return [
        (i.plu.name, i.quantity.amount) for o in kds_orders(daemon) for i in o.items
        if any(e.status is not S.PROCESS_SKIPPED for e in i.endpoints)
    ]  # fmt: skip


def statuses(order, item_id: int) -> list[OrderStatus]:  # type: ignore[no-untyped-def]
    return [e.status for e in order.item(item_id).endpoints]


async def test_a_returned_line_voids_the_dish_and_is_acknowledged(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # The cashier returns both burgers (a `returned` ticket item, quantity -2): PORTOS's next
    # order has a negative line; kds cancels the burgers (VOID where printed), makes no new dish.
    ticket = sim.create_ticket([{"pluCode": 101, "quantity": 2}, {"pluCode": 201}])
    first = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    returned = sim.add_items(ticket["id"], [{"pluCode": 101, "quantity": -2, "type": "returned"}])
    assert returned is not None and returned["items"][0]["quantity"]["amount"] == -2
    await until(daemon.clock, lambda: statuses(first, 1) == [S.PROCESS_SKIPPED])
    assert "returned" in (first.item(1).endpoints[0].status_changes[-1].reason or "")
    assert statuses(first, 2) == [S.SENT]  # the beer stays
    assert len(kds_orders(daemon)) == 1  # no kitchen order for the return
    await sim.wait_for(lambda: sim.status_of(first.external_id, "grill") == ["processSkipped"])
    await sim.wait_for(
        lambda: sim.status_of(returned["id"], "grill") == ["processSkipped"]
    )  # acknowledged
    await polls(portos(daemon), daemon.clock)
    assert portos(daemon).health()["alerts"] == []


async def test_a_line_taken_off_the_ticket_voids_the_dish(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # A storno: the burger is deleted from the open ticket (PUT without it).
    ticket = sim.create_ticket([{"pluCode": 101}, {"pluCode": 201}])
    first = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    sim.update_ticket(ticket["id"], [{"id": 2, "pluCode": 201}])
    await until(daemon.clock, lambda: statuses(first, 1) == [S.PROCESS_SKIPPED])
    assert statuses(first, 2) == [S.SENT] and len(kds_orders(daemon)) == 1


async def test_a_partial_return_lowers_the_quantity_once(
    tmp_path: Path, sim: PortosSimulator, printer: VirtualPrinter
) -> None:
    # One of three burgers is returned: the kitchen line is voided (VOID of the 3, printed) and
    # the 2 are sent again; acknowledged in PORTOS; neither later polls nor a restart repeat it.
    # The rest is kds's own order: not written back (no refused 404s), not cancelled by the
    # deletion reconcile (every 10 s of the daemon's clock, which the test moves past it).
    source = {"type": "portos", "base_url": sim.url, "token": TOKEN}
    settings = settings_from_dict(
        base_config(tmp_path, endpoints=printed_grill(printer.address), sources=[source])
    )
    for run in range(2):
        clock = ManualClock()
        daemon = Daemon(settings, clock=clock)
        async with TestClient(TestServer(daemon.app)) as client:
            if run == 0:
                ticket = sim.create_ticket([{"pluCode": 101, "quantity": 3}])
                first = await until(clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
                await printer.wait_for_jobs(1)
                async with websockets.connect(ws_url(client, "grill")) as ws:
                    await recv_until(ws, lambda m: m["type"] == "snapshot")
                    returned = sim.add_items(
                        ticket["id"], [{"pluCode": 101, "quantity": -1, "type": "returned"}]
                    )
                    assert returned is not None
                    await next_poll(portos(daemon), clock)
                    shown = await recv_until(ws, lambda m: m["type"] == "order.created")
                assert [
                    (i["plu"]["name"], i["quantity"]["amount"]) for i in shown["order"]["items"]
                ] == [("Cheeseburger", 2)]
                jobs = await printer.wait_for_jobs(3)
                assert (
                    jobs[1].lines[0].text.strip() == "VOID" and "3 x Cheeseburger" in jobs[1].text
                )
                assert "2 x Cheeseburger" in jobs[2].text
                assert statuses(first, 1) == [S.PROCESS_SKIPPED]
                await sim.wait_for(
                    lambda: sim.status_of(returned["id"], "grill") == ["processSkipped"]
                )
            await clock.advance(11)  # past a reconcile
            await polls(portos(daemon), clock, 3)
            assert making(daemon) == [("Cheeseburger", 2)]
            health = portos(daemon).health()
            assert health["alerts"] == [] and health["ok"], (
                health
            )  # the rest is kds's own: no refused write-back
    assert len(printer.jobs) == 3


async def test_a_stop_between_the_void_and_the_rest_still_sends_the_rest_once(
    tmp_path: Path, sim: PortosSimulator, printer: VirtualPrinter
) -> None:
    # A kill -9 after the void of a partial return committed but before the rest was sent: the
    # next run sends the 2 left (printed once), and later polls and restarts do not send it again.
    source = {"type": "portos", "base_url": sim.url, "token": TOKEN}
    with_portos = settings_from_dict(
        base_config(tmp_path, endpoints=printed_grill(printer.address), sources=[source])
    )
    without = settings_from_dict(base_config(tmp_path, endpoints=printed_grill(printer.address)))
    daemon = Daemon(with_portos, clock=ManualClock())
    async with TestClient(TestServer(daemon.app)):
        ticket = sim.create_ticket([{"pluCode": 101, "quantity": 3}])
        first = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
        await printer.wait_for_jobs(1)
    returned = sim.add_items(ticket["id"], [{"pluCode": 101, "quantity": -1, "type": "returned"}])
    assert returned is not None
    # The state the crash leaves: the void committed with the adapter's reason, no rest order.
    daemon = Daemon(without)
    async with TestClient(TestServer(daemon.app)):
        reason = f"returned in PORTOS order {returned['id']} line {returned['items'][0]['id']}"
        await daemon.service.cancel(first.id, item_ids=[1], reason=reason, actor="portos")
        await printer.wait_for_jobs(2)
    for _run in range(2):
        daemon = Daemon(with_portos, clock=ManualClock())
        async with TestClient(TestServer(daemon.app)):
            await printer.wait_for_jobs(3)
            await polls(portos(daemon), daemon.clock, 3)
            assert making(daemon) == [("Cheeseburger", 2)]
    jobs = printer.jobs
    assert (
        len(jobs) == 3
        and jobs[1].lines[0].text.strip() == "VOID"
        and "2 x Cheeseburger" in jobs[2].text
    )
