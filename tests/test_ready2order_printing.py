"""ready2order cancels and transfers reach the kitchen printer as VOID and TRANSFER tickets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.printer import VirtualPrinter
from kds.simulators.ready2order import Ready2OrderSimulator

from .test_ready2order_e2e import SECRET, TOKEN, active_items, product, table
from .util import base_config, printed_grill, wait_until


@pytest.fixture
async def sim() -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(account_token=TOKEN, retry_delays=(0.05, 0.1))
    sim.seed_menu()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(
    tmp_path: Path, sim: Ready2OrderSimulator, printer: VirtualPrinter
) -> dict[str, Any]:
    source = {
        "type": "ready2order",
        "base_url": sim.api_url,
        "account_token": TOKEN,
        "webhook_secret": SECRET,
        "group_window": "50ms",
        "poll_interval": "1h",
        "refetch_delay": "50ms",
    }
    return base_config(
        tmp_path,
        endpoints=printed_grill(printer.address),
        sources=[source],
    )


async def test_transfer_and_cancel_print_transfer_and_void(
    client: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: a printed ticket gets a TRANSFER note after orderItem.transferred and a VOID after orderItem.cancelled.
    sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    t3, t9 = table(sim, "3"), table(sim, "9")
    ids = sim.create_items(t3, [(product(sim, "Steak"), 2, "medium")])
    first = (await printer.wait_for_jobs(1))[0]
    assert "Steak" in first.text and "3" in first.text
    order = await wait_until(lambda: active_items(daemon).get(ids[0]))
    await wait_until(lambda: order.item(ids[0]).endpoint("grill").status.value == "delivered")  # type: ignore[union-attr]
    sim.transfer_items(t3, t9)
    transfer = (await printer.wait_for_jobs(2))[1]
    assert transfer.lines[0].text.strip() == "TRANSFER" and "Table 9" in transfer.text
    sim.cancel_items(ids)
    void = (await printer.wait_for_jobs(3))[2]
    assert void.lines[0].text.strip() == "VOID" and "Steak" in void.text


async def test_waiter_comment_with_printer_commands_prints_as_text(
    client: TestClient, daemon: Daemon, sim: Ready2OrderSimulator, printer: VirtualPrinter
) -> None:
    # A waiter's comment carrying ESC/POS commands (cut, drawer kick, DLE DC4, a 127-line feed,
    # a reset, NUL, DEL, a C1 control) and a line break prints as text: the ticket holds exactly
    # the commands of the same ticket with a plain comment.
    from .test_printing_sanitize import INJECTED, commands

    sim.webhook_url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    t3 = table(sim, "3")
    sim.create_items(t3, [(product(sim, "Steak"), 1, "medium please")])
    clean = (await printer.wait_for_jobs(1))[0]
    sim.create_items(t3, [(product(sim, "Steak"), 1, f"medium{INJECTED} please\r\n{INJECTED}")])
    dirty = (await printer.wait_for_jobs(2))[1]
    assert commands(dirty) == commands(clean) and dirty.cuts == 1
    texts = [line.text for line in dirty.lines]
    comment = next(i for i, text in enumerate(texts) if text.startswith("   ! "))
    assert texts[comment] == "   ! mediumipd@ please" and texts[comment + 1] == "     ipd@"
