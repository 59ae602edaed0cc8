"""One fault vocabulary for every fake: the same modes, `times`, queue and control route everywhere.

PORTOS, ready2order and cheques simulators are each driven the same way as the virtual
printer (`set_mode(mode, times=N)`), from Python and over HTTP, and each fault looks to a
client like the real outage it stands for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from kds.simulators.cheques import ChequesSimulator
from kds.simulators.portos import PortosSimulator
from kds.simulators.printer import VirtualPrinter
from kds.simulators.ready2order import Ready2OrderSimulator

from .util import wait_until


@dataclass
class Fake:
    """A started simulator and one ordinary request to its API."""

    sim: Any
    root: str  # where /_sim/mode lives
    path: str  # the API path `call` requests
    call: Callable[[aiohttp.ClientSession], Awaitable[aiohttp.ClientResponse]]


async def _portos() -> Fake:
    sim = PortosSimulator(static_tokens=["t"])
    await sim.start()
    headers = {"Authorization": "Bearer t"}
    return Fake(sim, sim.root, "/api/orders", lambda s: s.get(f"{sim.url}/orders", headers=headers))


async def _ready2order() -> Fake:
    sim = Ready2OrderSimulator(account_token="acc")
    sim.seed_menu()
    await sim.start()
    headers = {"Authorization": "Bearer acc"}
    return Fake(
        sim, sim.url, "/v1/tables", lambda s: s.get(f"{sim.api_url}/tables", headers=headers)
    )


async def _cheques() -> Fake:
    sim = ChequesSimulator()
    await sim.start()
    headers = {"INTENT_OPERATION_TYPE": "GET_CHEQUES"}
    return Fake(
        sim, sim.url, "/v1", lambda s: s.post(sim.endpoint_url, json={"uuids": []}, headers=headers)
    )


FAKES = {"portos": _portos, "ready2order": _ready2order, "cheques": _cheques}


@pytest.fixture(params=list(FAKES))
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[Fake]:
    started = await FAKES[request.param]()
    try:
        yield started
    finally:
        await started.sim.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def status_of(fake: Fake, http: aiohttp.ClientSession) -> int:
    async with await fake.call(http) as response:
        await response.read()
        return response.status


async def test_a_mode_for_n_requests_then_online(fake: Fake, http: aiohttp.ClientSession) -> None:
    # `times=2`: exactly the next two requests meet the fault, then the fake behaves again.
    await fake.sim.set_mode("error", times=2, status=503)
    assert [await status_of(fake, http) for _ in range(3)] == [503, 503, 200]
    assert fake.sim.faults.mode == "online" and fake.sim.faults.applied == 2


async def test_queued_modes_follow_each_other(fake: Fake, http: aiohttp.ClientSession) -> None:
    # A script of faults: an error, then a truncated body, then an HTML page, then online.
    await fake.sim.set_mode("error", times=1, status=500)
    fake.sim.then_mode("garbage")
    fake.sim.then_mode("html")
    assert await status_of(fake, http) == 500
    async with await fake.call(http) as response:
        assert response.status == 200
        with pytest.raises(ValueError):
            await response.json()
    async with await fake.call(http) as response:
        assert response.content_type == "text/html"
    assert await status_of(fake, http) == 200


async def test_path_limits_a_mode_to_some_requests(fake: Fake, http: aiohttp.ClientSession) -> None:
    # A mode under another path neither touches nor counts the requests outside it.
    await fake.sim.set_mode("error", times=1, path="/elsewhere/")
    assert await status_of(fake, http) == 200
    assert fake.sim.faults.mode == "error" and fake.sim.faults.times == 1
    await fake.sim.set_mode("error", times=1, path=fake.path)
    assert await status_of(fake, http) == 500


async def test_hang_lasts_until_the_mode_changes(fake: Fake, http: aiohttp.ClientSession) -> None:
    # A hung request is answered only once the fake is told to behave.
    await fake.sim.set_mode("hang")
    pending = asyncio.ensure_future(status_of(fake, http))
    await wait_until(lambda: fake.sim.faults.applied == 1)
    assert not pending.done()
    await fake.sim.set_mode("online")
    assert await asyncio.wait_for(pending, 5) == 200


async def test_drop_closes_the_connection_without_an_answer(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    await fake.sim.set_mode("drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await status_of(fake, http)


async def test_offline_refuses_connections_and_online_resumes_on_the_same_port(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    assert await status_of(fake, http) == 200  # a keep-alive connection is open now
    await fake.sim.set_mode("offline")
    with pytest.raises(aiohttp.ClientConnectionError):
        await status_of(fake, http)
    await fake.sim.set_mode("online")
    assert await status_of(fake, http) == 200


async def test_control_route_sets_reads_and_clears_the_mode(
    fake: Fake, http: aiohttp.ClientSession
) -> None:
    # Another process (kds demo, a shell) drives the same vocabulary over /_sim/mode.
    async with http.post(
        f"{fake.root}/_sim/mode", json={"mode": "error", "times": 1, "status": 502}
    ) as response:
        assert response.status == 200
        assert (await response.json())["mode"] == "error"
    assert await status_of(fake, http) == 502
    async with http.get(f"{fake.root}/_sim/mode") as response:
        state = await response.json()
    assert state["mode"] == "online" and state["applied"] == 1
    async with http.post(f"{fake.root}/_sim/mode", json={"mode": "slow", "delay": 5}) as response:
        assert response.status == 200
    async with http.delete(f"{fake.root}/_sim/mode") as response:
        assert (await response.json())["mode"] == "online"
    assert await status_of(fake, http) == 200


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "sideways"},
        {"mode": "error", "times": 0},
        {"mode": "error", "times": True},
        {"mode": "error", "status": 99},
        {"mode": "slow", "delay": -1},
        {"mode": "error", "colour": "red"},
        {"mode": "offline", "times": 2},
        {"times": 1},
        ["error"],
    ],
)
async def test_control_route_refuses_bad_input_and_changes_nothing(
    fake: Fake, http: aiohttp.ClientSession, body: Any
) -> None:
    async with http.post(f"{fake.root}/_sim/mode", json=body) as response:
        assert response.status == 400
        assert (await response.json())["detail"]
    async with http.post(
        f"{fake.root}/_sim/mode", data=b"{", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    assert fake.sim.faults.mode == "online"
    assert await status_of(fake, http) == 200


async def test_the_printer_speaks_the_same_vocabulary(http: aiohttp.ClientSession) -> None:
    # The model the others follow: modes for N connections, a queue, GET/POST/DELETE /mode.
    async with VirtualPrinter(control_port=0) as controlled:
        base = f"http://127.0.0.1:{controlled.control_port}"
        async with http.post(f"{base}/mode", json={"mode": "paper_out", "times": 2}) as response:
            assert response.status == 200
        controlled.then_mode("cover_open")
        async with http.get(f"{base}/mode") as response:
            state = await response.json()
        assert state["mode"] == "paper_out" and state["times"] == 2
        assert [f["mode"] for f in state["queued"]] == ["cover_open"]
        async with http.post(f"{base}/mode", json={"mode": "paper_out", "times": 0}) as response:
            assert response.status == 400
        async with http.delete(f"{base}/mode") as response:
            assert (await response.json())["mode"] == "online"
