"""A returned or cancelled PORTOS line reaches the kitchen as a VOID, never as a new dish and
never silently (issue 14, item 5)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.model import OrderStatus
from kds.simulators.portos import PortosSimulator

from .test_portos_e2e import config_data, kds_orders, portos, portos_auth, sim  # noqa: F401
from .util import wait_until

S = OrderStatus


def statuses(order, item_id: int) -> list[OrderStatus]:  # type: ignore[no-untyped-def]
    return [e.status for e in order.item(item_id).endpoints]


async def test_a_returned_line_voids_the_dish_and_is_acknowledged(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # The cashier returns both burgers (a `returned` ticket item, quantity -2): PORTOS's next
    # order has a negative line; kds cancels the burgers (VOID where printed), makes no new dish.
    ticket = sim.create_ticket([{"pluCode": 101, "quantity": 2}, {"pluCode": 201}])
    first = await wait_until(lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    returned = sim.add_items(ticket["id"], [{"pluCode": 101, "quantity": -2, "type": "returned"}])
    assert returned is not None and returned["items"][0]["quantity"]["amount"] == -2
    await wait_until(lambda: statuses(first, 1) == [S.PROCESS_SKIPPED])
    assert "returned" in (first.item(1).endpoints[0].status_changes[-1].reason or "")
    assert statuses(first, 2) == [S.SENT]  # the beer stays
    assert len(kds_orders(daemon)) == 1  # no kitchen order for the return
    await sim.wait_for(lambda: sim.status_of(first.external_id, "grill") == ["processSkipped"])
    await sim.wait_for(lambda: sim.status_of(returned["id"], "grill") == ["processSkipped"])  # acknowledged
    polls = portos(daemon).poll_count
    await wait_until(lambda: portos(daemon).poll_count >= polls + 2)
    assert portos(daemon).health()["alerts"] == []


async def test_a_line_taken_off_the_ticket_voids_the_dish(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # A storno: the burger is deleted from the open ticket (PUT without it).
    ticket = sim.create_ticket([{"pluCode": 101}, {"pluCode": 201}])
    first = await wait_until(lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    sim.update_ticket(ticket["id"], [{"id": 2, "pluCode": 201}])
    await wait_until(lambda: statuses(first, 1) == [S.PROCESS_SKIPPED])
    assert statuses(first, 2) == [S.SENT] and len(kds_orders(daemon)) == 1


async def test_a_partial_return_is_shown_to_staff(client: TestClient, daemon: Daemon, sim: PortosSimulator) -> None:
    # One of three burgers is returned: kds cannot lower a quantity, so it says so on the screens
    # and /readyz instead of voiding all three or saying nothing.
    ticket = sim.create_ticket([{"pluCode": 101, "quantity": 3}])
    first = await wait_until(lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    sim.update_ticket(ticket["id"], [{"id": 1, "pluCode": 101, "quantity": 2}])
    health = await wait_until(lambda: portos(daemon).health()["alerts"] and portos(daemon).health())
    (alert,) = health["alerts"]
    assert alert["kind"] == "line_unapplied" and "1 × Cheeseburger" in alert["message"]
    assert statuses(first, 1) == [S.SENT]
