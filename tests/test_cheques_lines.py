"""Cheque lines that change price, cannot be read, or return a dish (issue 14, items 5 and 11)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.model import OrderIn
from kds.simulators.cheques import ChequesSimulator
from kds.simulators.printer import VirtualPrinter

from .test_cheques_e2e import cheques, kitchen, live, orders_of, polls
from .test_cheques_printing import config_data, daemon, sim  # noqa: F401 - fixtures: one printed grill, a ManualClock
from .util import printed


def voided(daemon: Daemon, uuid: str) -> list[tuple[str, Any]]:
    return [
        (i.plu.name, i.quantity.amount)
        for o in orders_of(daemon, uuid)
        for i in o.items
        if not live(i)
    ]


async def test_price_edit_is_not_a_new_dish(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: a cashier correcting the price of a line neither voids nor re-fires the dish.
    uuid = sim.open_cheque(table=2)
    pos = sim.add_item(uuid, "6.5", 2, name="Борщ", code=10)
    await printed(daemon.clock, printer, 1)
    sim.set_price(uuid, pos, "5.9")
    await polls(daemon, 3)
    assert len(orders_of(daemon, uuid)) == 1 and voided(daemon, uuid) == []
    assert kitchen(daemon, uuid) == {"Борщ": 2}
    assert len(printer.jobs) == 1


async def test_price_edit_of_a_nameless_line_keeps_the_kitchen_right(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: a line with neither name nor code is known only by its price: a price edit is a
    # new line, but the kitchen still makes exactly what the cheque holds (documented limit).
    uuid = sim.open_cheque(table=3)
    pos = sim.add_item(uuid, "5", 1)
    await polls(daemon)
    sim.set_price(uuid, pos, "4")
    await polls(daemon, 3)
    assert sum(kitchen(daemon, uuid).values()) == 1


async def test_unreadable_line_is_reported_never_voided(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: a line kds cannot read is not taken as removed (no VOID, nothing re-sent);
    # it is logged and shown in /readyz until the till sends it readable again.
    uuid = sim.open_cheque(table=4)
    soup = sim.add_item(uuid, "6.5", 1, name="Борщ", code=10)
    nameless = sim.add_item(uuid, "5", 2)
    await polls(daemon)
    assert kitchen(daemon, uuid) == {"Борщ": 1, "#2 · 5.00": 2}
    sim.set_raw(uuid, soup, quantity="one")
    sim.set_raw(uuid, nameless, price="n/a")
    await polls(daemon, 3)
    assert voided(daemon, uuid) == [] and len(orders_of(daemon, uuid)) == 1
    ready = await (await client.get("/readyz")).json()
    health = next(v for k, v in ready["components"].items() if "cheques" in k)
    assert ready["status"] == "degraded" and health["ok"] is False
    problems = health["unreadableLines"]
    assert {(p["cheque"], p["position"]) for p in problems} == {
        (uuid, soup + 1),
        (uuid, nameless + 1),
    }
    assert any("quantity" in p["reason"] for p in problems)
    sim.set_raw(uuid, soup)
    sim.set_raw(uuid, nameless)
    await polls(daemon, 3)
    assert (
        cheques(daemon).health()["ok"] is True and cheques(daemon).health()["unreadableLines"] == []
    )
    assert kitchen(daemon, uuid) == {"Борщ": 1, "#2 · 5.00": 2} and voided(daemon, uuid) == []


async def test_returned_line_voids_the_dish(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: a negative (return/correction) line takes the dish away: a VOID is printed,
    # the rest is kept, and nothing reaches the kitchen as a new dish.
    uuid = sim.open_cheque("Чек 9", table=9)
    sim.add_item(uuid, "6.5", 2, name="Борщ", code=10)
    sim.add_item(uuid, "7.2", 1, name="Драники", code=11)
    await printed(daemon.clock, printer, 1)
    sim.add_item(uuid, "7.2", -1, name="Драники", code=11)
    void = (await printed(daemon.clock, printer, 2))[1]
    assert (
        void.lines[0].text.strip() == "VOID" and "Драники" in void.text and "Борщ" not in void.text
    )
    await polls(daemon, 3)
    assert kitchen(daemon, uuid) == {"Борщ": 2}
    assert len(printer.jobs) == 2
    sim.add_item(uuid, "6.5", -1, name="Борщ", code=10)  # one of two soups returned: 1 is made
    await polls(daemon, 3)
    assert kitchen(daemon, uuid) == {"Борщ": 1}
    assert all(i.quantity.amount > 0 for o in orders_of(daemon, uuid) for i in o.items)


async def test_lines_stored_before_the_upgrade_still_match(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator
) -> None:
    # Guarantees: kitchen items keyed the old way (code, name, price) are recognised, so an
    # upgrade neither voids nor re-sends the open cheques.
    uuid = str(
        uuid4()
    )  # the cheque opens only once its old kitchen order is stored (no poll in between)
    old = OrderIn.model_validate(
        {
            "id": f"{uuid}#1",
            "source": "cheques",
            "items": [
                {
                    "id": 1,
                    "plu": {"name": "Борщ", "code": 10, "stockName": 'cheques:[10, "Борщ", "6.5"]'},
                    "quantity": 1,
                }
            ],
        }
    )
    await daemon.service.ingest(old, actor="cheques")
    sim.open_cheque(table=5, cheque_uuid=uuid)
    sim.add_item(uuid, "6.5", 1, name="Борщ", code=10)
    await polls(daemon, 3)
    assert len(orders_of(daemon, uuid)) == 1 and voided(daemon, uuid) == []
