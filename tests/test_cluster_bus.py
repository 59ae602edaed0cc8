"""The cluster bus on a real PostgreSQL server: what a node's screens get of its own and
another node's events."""

from __future__ import annotations

import json

from kds.bus import Event
from kds.cluster.bus import ClusterBus
from kds.store.postgres import PostgresStore
from kds.tasks import TaskSupervisor

from .util import wait_until

ORDER = '{"id":"o1","number":7,"items":[{"id":1,"plu":{"name":"Börek"}}]}'


async def test_a_nodes_own_event_keeps_its_data_and_another_node_reads_the_order(
    pg_url: str,
) -> None:
    # Node A publishes an order event (its order JSON encoded already, as the service does).
    # A's own screens get the event as a single node makes it: the data it was published
    # with, the order only in the JSON. Node B gets the same JSON under the same seq, and
    # reads the order's id from it (B must re-read the order into its view).
    store = PostgresStore(pg_url)
    await store.start()  # the schema
    a, b = (ClusterBus(pg_url, origin, supervisor=TaskSupervisor()) for origin in ("a/1", "b/2"))
    got: dict[str, list[Event]] = {"a": [], "b": []}
    for name, bus in (("a", a), ("b", b)):
        await bus.start()
        bus.subscribe(got[name].append)
    try:
        a.publish(
            "order.created",
            {"changes": []},
            encoded={"order": ORDER},
            endpoints=frozenset({"grill"}),
        )
        await wait_until(lambda: got["a"] and got["b"])
        (mine,), (theirs,) = got["a"], got["b"]
        assert mine.seq == theirs.seq and mine.payload == theirs.payload
        assert json.loads(mine.payload) == {
            "type": "order.created",
            "seq": mine.seq,
            "changes": [],
            "order": json.loads(ORDER),
        }
        assert mine.data == {"changes": []}
        assert theirs.data["order"]["id"] == "o1"
        assert mine.endpoints == theirs.endpoints == frozenset({"grill"})
    finally:
        for bus in (a, b):
            await bus.stop()
        await store.stop()
