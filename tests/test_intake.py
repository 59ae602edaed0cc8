"""The inbox worker every pushed source shares (`kds.sources.intake`): a raw event whose
processing crashes is retried after 1, 2, 3, 4 s on the daemon's clock, then closed with the
reason, and holds up no other event. Runs on a real daemon's store and task supervisor."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings
from kds.sources.intake import InboxWorker

from .util import wait_until


async def pending_row(daemon: Daemon, inbox_id: int) -> tuple[str | None, str | None]:
    row = await daemon.store.fetchone(
        "SELECT processed_at, error FROM inbox WHERE id = ?", (inbox_id,)
    )
    assert row is not None
    return row["processed_at"], row["error"]


async def test_an_event_whose_processing_crashes_is_retried_then_closed_and_holds_up_no_other(
    settings: Settings, aiohttp_client: object
) -> None:
    clock = ManualClock()
    daemon = Daemon(settings, clock=clock)
    client: TestClient = await aiohttp_client(daemon.app)  # type: ignore[operator]
    assert client.server is not None
    ctx = daemon.source_ctx
    attempts: list[tuple[float, bytes]] = []
    given_up: list[tuple[int, str]] = []

    async def process(inbox_id: int, body: bytes) -> None:
        attempts.append((clock.monotonic(), body))
        if body == b"crashes":
            raise RuntimeError("a bug in the source")
        await ctx.inbox.done(inbox_id)

    worker = InboxWorker(
        "test", ctx, process, gave_up=lambda i, err: given_up.append((i, str(err)))
    )
    await worker.start()
    try:
        start = clock.monotonic()
        bad = await worker.receive("event:1", b"crashes")
        good = await worker.receive("event:2", b"fine")
        assert bad is not None and good is not None
        await wait_until(lambda: len(attempts) == 2)
        assert (await pending_row(daemon, good))[0] is not None  # not held up by the crash
        for _ in range(4):
            await clock.waiting(1)
            await clock.advance(4)
        await wait_until(lambda: given_up)
        tried = [round(t - start) for t, body in attempts if body == b"crashes"]
        assert tried == [0, 1, 3, 6, 10]  # retried 1, 2, 3 and 4 s after each failure
        assert given_up == [(bad, "a bug in the source")]
        processed_at, error = await pending_row(daemon, bad)
        assert processed_at is not None and error == "failed 5 times: a bug in the source"
        assert not worker.busy
    finally:
        await worker.stop()
