"""Lines removed from a cheque print a VOID where their ticket was printed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings
from kds.simulators.cheques import ChequesSimulator
from kds.simulators.printer import VirtualPrinter

from .util import FAST_PRINTER, base_config, printed


@pytest.fixture
async def sim() -> AsyncIterator[ChequesSimulator]:
    sim = ChequesSimulator()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(tmp_path: Path, sim: ChequesSimulator, printer: VirtualPrinter) -> dict[str, Any]:
    return base_config(
        tmp_path,
        endpoints=[
            {
                "name": "grill",
                "display": True,
                "printer": {"address": printer.address, **FAST_PRINTER},
            }
        ],
        routing={"default_endpoint": "grill", "rules": []},
        sources=[{"type": "cheques", "url": sim.endpoint_url}],  # polled every 2 s of `clock`
    )


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


async def test_added_lines_print_new_tickets_and_removed_lines_print_void(
    client: TestClient, daemon: Daemon, sim: ChequesSimulator, printer: VirtualPrinter
) -> None:
    # Guarantees: each cheque change prints only the difference; a removed line prints VOID.
    uuid = sim.open_cheque("Чек 7", table=7, place=1)
    sim.add_item(uuid, "6.5", 1, name="Борщ", code=10)
    first = (await printed(daemon.clock, printer, 1))[0]
    assert "1 x Борщ" in first.text and "Table 7 · 1" in first.text
    sim.add_item(uuid, "7.2", 2, name="Драники", code=11)
    second = (await printed(daemon.clock, printer, 2))[1]
    assert "2 x Драники" in second.text and "Борщ" not in second.text
    sim.remove_item(uuid, 0)
    void = (await printed(daemon.clock, printer, 3))[2]
    assert (
        void.lines[0].text.strip() == "VOID"
        and "VOID 1 x Борщ" in void.text
        and "Драники" not in void.text
    )
