"""Pickup numbers: kds gives every open order its own number, whatever number its POS sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict

from .util import base_config, order_body


async def _post(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=body)
    data = await response.json()
    assert response.status == 201, data
    return data


async def _bump(client: Any, order: dict[str, Any]) -> None:
    for status in ("delivered", "processed"):  # the screen shows it, the cook bumps it
        response = await client.post(
            f"/api/v1/orders/{order['id']}/status", json={"status": status}
        )
        assert response.status == 200, await response.text()


def _daemon(tmp_path: Path, **ui: Any) -> Daemon:
    return Daemon(settings_from_dict(base_config(tmp_path, ui=ui)))


async def test_several_sources_sending_the_same_number_get_different_pickup_numbers(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Three tills each send their own "#5": three open orders, three pickup numbers; the POS's
    # number stays on the order as `posNumber`, and an order without one has posNumber null.
    client = await aiohttp_client(_daemon(tmp_path).app)
    orders = [
        await _post(client, order_body(f"o-{src}", source=src, number=5))
        for src in ("native", "till-a", "till-b")
    ]
    orders.append(await _post(client, order_body("o-plain")))
    assert len({o["number"] for o in orders}) == 4
    assert [o["posNumber"] for o in orders] == [5, 5, 5, None]
    listed = await (await client.get("/api/v1/orders", params={"posNumber": "5"})).json()
    assert sorted(o["id"] for o in listed["items"]) == sorted(o["id"] for o in orders[:3])
    await client.close()


async def test_numbers_wrap_around_past_the_numbers_still_in_use(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # With numbers 1-5, after 5 the count starts again at 1, skipping every number an open
    # order still holds; when all are held it goes past the range rather than repeat one.
    client = await aiohttp_client(
        _daemon(tmp_path, max_pickup_number=5, pickup_ready_time=0, recall_window=0).app
    )
    first = [await _post(client, order_body(f"a{i}", number=1)) for i in range(3)]
    assert [o["number"] for o in first] == [1, 2, 3]
    await _bump(client, first[1])  # #2 is collected: free again
    more = [await _post(client, order_body(f"b{i}", number=1)) for i in range(4)]
    assert [o["number"] for o in more] == [4, 5, 2, 6]
    await client.close()


async def test_a_ready_number_is_not_reused_while_on_the_pickup_board(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # A finished order keeps its number while the pickup board may still show it as ready
    # (and while it can be recalled): the next order does not get it.
    client = await aiohttp_client(
        _daemon(tmp_path, max_pickup_number=2, pickup_ready_time="2m", recall_window=0).app
    )
    one, two = [await _post(client, order_body(f"a{i}")) for i in range(2)]
    await _bump(client, one)
    three = await _post(client, order_body("a3"))
    assert three["number"] not in (one["number"], two["number"])
    await client.close()


async def test_numbers_in_use_survive_a_restart(tmp_path: Path, aiohttp_client: Any) -> None:
    # After a restart the open orders keep their numbers and new orders get none of them.
    daemon = _daemon(tmp_path, max_pickup_number=4, pickup_ready_time=0, recall_window=0)
    client = await aiohttp_client(daemon.app)
    first = [await _post(client, order_body(f"a{i}", number=7)) for i in range(3)]
    await _bump(client, first[0])
    await client.close()

    client = await aiohttp_client(
        _daemon(tmp_path, max_pickup_number=4, pickup_ready_time=0, recall_window=0).app
    )
    for order in first:
        assert (await (await client.get(f"/api/v1/orders/{order['id']}")).json())[
            "number"
        ] == order["number"]
    held = {o["number"] for o in first[1:]}
    new = [await _post(client, order_body(f"b{i}")) for i in range(2)]
    numbers = [o["number"] for o in new]
    assert len(set(numbers)) == 2 and not held & set(numbers) and all(n <= 4 for n in numbers)
    await client.close()
