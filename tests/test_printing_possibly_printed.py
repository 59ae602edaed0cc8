"""A ticket whose print outcome is unknown counts as possibly printed: cancels void it, retries say REPRINT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import Location, TicketInfo
from kds.simulators.printer import PrintedJob, VirtualPrinter

from .util import FAST_PRINTER, base_config, order_body, wait_until

#: Retries only when a test asks ("Retry now"), so it can act while items are `failed`.
ON_KICK = {**FAST_PRINTER, "attempts": 1, "retry_initial": 60, "retry_max": 60}

#: Printer modes whose job may have printed although kds could not tell.
UNKNOWN_OUTCOME = [
    pytest.param({"mode": "stall", "times": 1}, id="stall"),
    pytest.param({"mode": "drop_mid_job", "times": 1, "drop_after": 60}, id="drop_mid_job"),
]


@pytest.fixture
def config_data(tmp_path: Path, printers: dict[str, VirtualPrinter]) -> dict[str, Any]:
    return base_config(
        tmp_path,
        endpoints=[
            {
                "name": "grill",
                "display": True,
                "printer": {"address": printers["grill"].address, **ON_KICK},
            },
            {"name": "cold", "display": True},
            {
                "name": "bar",
                "printer": {"address": printers["bar"].address, **ON_KICK},
            },  # printer only
        ],
    )


def status(daemon: Daemon, order_id: str, endpoint: str, item_id: int) -> str:
    order = daemon.service.get(order_id)
    assert order is not None
    return order.item(item_id).endpoint(endpoint).status.value  # type: ignore[union-attr]


def banner(job: PrintedJob) -> str:
    return job.lines[0].text.strip()


async def post(client: TestClient, external_id: str) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=order_body(external_id))
    assert response.status == 201, await response.text()
    return await response.json()


async def print_uncertainly(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], mode: dict[str, Any]
) -> dict[str, Any]:
    """An order whose tickets reached both printers, which then stalled or dropped: items `failed`."""
    for printer in (printers["grill"], printers["bar"]):
        await printer.set_mode(**mode)
    order = await post(client, "u1")
    for printer in (printers["grill"], printers["bar"]):
        await printer.wait_for(lambda p: p.jobs or p.discarded)
    await wait_until(lambda: status(daemon, order["id"], "grill", 1) == "failed")
    await wait_until(lambda: status(daemon, order["id"], "bar", 2) == "failed")
    return order


async def retry(client: TestClient, endpoint: str) -> None:
    response = await client.post(f"/api/v1/printers/{endpoint}/retry")
    assert response.status == 202


@pytest.mark.parametrize("mode", UNKNOWN_OUTCOME)
async def test_cancel_after_an_unknown_outcome_prints_a_void(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], mode: dict[str, Any]
) -> None:
    # The ticket may be on paper (the printer stalled after printing, or dropped the connection
    # mid-job), so the item is `failed`; a cancel now still queues a VOID, and once the printer
    # is back the retry prints it — the cook learns the burger is off.
    order = await print_uncertainly(client, daemon, printers, mode)
    assert (await client.delete(f"/api/v1/orders/{order['id']}")).status in (200, 204)
    assert status(daemon, order["id"], "grill", 1) == "processSkipped"
    for name, item in (("grill", "VOID 2 x Cheeseburger"), ("bar", "VOID 1 x Pilsner")):
        await retry(client, name)
        await printers[name].wait_for(lambda p: any(banner(job) == "VOID" for job in p.jobs))
        void = next(job for job in printers[name].jobs if banner(job) == "VOID")
        assert item in void.text and void.complete
    await wait_until(lambda: daemon.outbox.pending_count == 0)
    # Nothing else was printed: the new ticket had nothing left to print.
    assert [banner(job) for job in printers["grill"].jobs][1:] == ["VOID"]


@pytest.mark.parametrize("mode", UNKNOWN_OUTCOME)
async def test_retry_after_an_unknown_outcome_prints_reprint(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter], mode: dict[str, Any]
) -> None:
    # Not cancelled: the retry prints the ticket again, marked REPRINT, and the items go on.
    order = await print_uncertainly(client, daemon, printers, mode)
    await retry(client, "grill")
    await printers["grill"].wait_for(lambda p: any(banner(job) == "REPRINT" for job in p.jobs))
    reprint = next(job for job in printers["grill"].jobs if banner(job) == "REPRINT")
    assert "2 x Cheeseburger" in reprint.text and reprint.complete
    await wait_until(lambda: status(daemon, order["id"], "grill", 1) == "delivered")


async def test_transfer_after_an_unknown_outcome_prints_a_transfer(
    client: TestClient, daemon: Daemon, printers: dict[str, VirtualPrinter]
) -> None:
    # Moving the table of a possibly printed ticket prints TRANSFER (after the REPRINT of the
    # ticket itself, which is still owed).
    order = await print_uncertainly(client, daemon, printers, {"mode": "stall", "times": 1})
    await daemon.service.update_ticket(
        order["id"], TicketInfo(name="Table 9", location=Location(table_name="9"))
    )
    await retry(client, "grill")
    # Both wait for the printer, so they go out together (one connection, two tickets).
    await printers["grill"].wait_for(lambda p: any("TRANSFER" in t for t in p.tickets()))
    banners = [ticket.splitlines()[0].strip() for ticket in printers["grill"].tickets()]
    assert banners[1:] == ["REPRINT", "TRANSFER"]
    transfer = printers["grill"].tickets()[-1]
    assert "NOW AT: Table 9" in transfer and "2 x Cheeseburger" in transfer


async def test_possibly_printed_survives_a_restart(
    tmp_path: Path,
    aiohttp_client: Any,
    config_data: dict[str, Any],
    printers: dict[str, VirtualPrinter],
) -> None:
    # The fact that a ticket may be on paper is durable: cancelled after a restart, the item
    # still gets its VOID.
    settings = settings_from_dict(config_data)
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    order = await print_uncertainly(client, first, printers, {"mode": "stall", "times": 1})
    await client.close()

    await printers["grill"].set_mode(
        "offline"
    )  # the pending ticket must not print before the cancel
    await printers["bar"].set_mode("offline")
    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    assert status(second, order["id"], "grill", 1) == "failed"
    assert (await client.delete(f"/api/v1/orders/{order['id']}")).status in (200, 204)
    await printers["grill"].set_mode("online")
    await retry(client, "grill")
    await printers["grill"].wait_for(lambda p: any(banner(job) == "VOID" for job in p.jobs))
    assert "VOID 2 x Cheeseburger" in printers["grill"].jobs[-1].text
    await client.close()
