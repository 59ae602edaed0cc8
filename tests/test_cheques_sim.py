"""The cheques simulator answers like seed 003 and changes its cheques over time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kds.simulators.cheques import ChequesSimulator
from kds.sources.cheques.translate import parse_cheques


@pytest.fixture
async def sim() -> AsyncIterator[ChequesSimulator]:
    sim = ChequesSimulator(seed=1, pin="1111")
    await sim.start()
    yield sim
    await sim.stop()


async def call(
    sim: ChequesSimulator, intent: str, body: Any, token: str | None = None
) -> dict[str, Any]:
    headers = {"INTENT_OPERATION_TYPE": intent}
    if token:
        headers["Auth-token"] = token
    async with aiohttp.ClientSession() as s:
        async with s.post(sim.endpoint_url, data=json.dumps(body), headers=headers) as resp:
            assert resp.status == 200  # errors travel as resultCode
            return await resp.json()


async def test_auth_then_all_or_selected_cheques_and_488(sim: ChequesSimulator) -> None:
    # Guarantees: AUTH gives the Auth-token; empty uuids → all; chosen uuids → those; a missing one → 488.
    assert (await call(sim, "GET_CHEQUES", {"uuids": []}))["resultCode"] == 401
    auth = await call(sim, "AUTH", {"pin": "1111"})
    token = auth["token"]
    a = sim.open_cheque("Чек 1", cheque_type="Postponed")
    b = sim.open_cheque("Чек 2", table=2, place=3)
    sim.add_item(a, "5", 3, discount_percent="10")
    sim.add_item(b, "5", 1, name="Чай")
    everything = await call(sim, "GET_CHEQUES", {"uuids": []}, token)
    assert everything["type"] == "GET_CHEQUES" and len(everything["cheques"]) == 2
    line = everything["cheques"][0]["items"][0]
    assert line == {
        "price": "5",
        "quantity": "3",
        "sum": "15",
        "discount": {"isPercent": True, "value": "10", "sum": "1.5"},
        "total": "13.5",
    }
    chosen = await call(sim, "GET_CHEQUES", {"uuids": [b]}, token)
    assert [c["info"] for c in chosen["cheques"]] == [
        {"uuid": b, "name": "Чек 2", "chequeType": "Order", "table": 2, "place": 3}
    ]
    missing = await call(
        sim, "GET_CHEQUES", {"uuids": ["12345-6789-4c56-818e-26686d5a7ec3"]}, token
    )
    assert missing["resultCode"] == 488 and "cheques" not in missing


async def test_random_traffic_keeps_answers_readable(sim: ChequesSimulator) -> None:
    # Guarantees: step() changes cheques in every way kds must handle, and every answer parses.
    token = (await call(sim, "AUTH", {"pin": "1111"}))["token"]
    done = {sim.step() for _ in range(200)}
    assert {"open", "add", "more", "remove", "close"} <= done
    cheques = parse_cheques(await call(sim, "GET_CHEQUES", {"uuids": []}, token))
    assert len(cheques) == len(sim.cheques)
    assert any(line.name is None for c in cheques for line in c.lines) or not sim.cheques
