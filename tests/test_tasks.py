"""The task supervisor: every background task is named, watched, restarted or reported on /readyz."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import Settings
from kds.tasks import RESTART_FIRST, TaskSupervisor

from .util import ROOT, wait_until

#: Daemon code: everything under kds/ but the simulators and the benchmark (test tooling).
DAEMON_CODE = [
    p
    for p in (ROOT / "kds").rglob("*.py")
    if not {"simulators", "bench"} & set(p.relative_to(ROOT / "kds").parts)
]
#: A task made outside the supervisor: asyncio.create_task, ensure_future, loop.create_task.
BARE_TASK = re.compile(
    r"\b(?:asyncio\.create_task|ensure_future|loop\(\)\.create_task|loop\.create_task)\("
)


@pytest.mark.parametrize("path", DAEMON_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_background_task_outside_the_supervisor(path: Path) -> None:
    # Background work is spawned through kds.tasks.TaskSupervisor (named, referenced, on /readyz);
    # per-request work through an asyncio.TaskGroup of its handler. Nothing else makes tasks.
    if path == ROOT / "kds" / "tasks.py":
        return
    bare = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if BARE_TASK.search(line)
    ]
    assert not bare, "tasks made outside the supervisor:\n" + "\n".join(bare)


async def test_a_crashing_task_is_restarted_after_a_backoff_and_shown_meanwhile() -> None:
    # A task spawned with restart=True that crashes reads "restarting" with its error, and runs
    # again once the backoff passed on the supervisor's clock; one without restart reads "failed".
    clock = ManualClock()
    supervisor = TaskSupervisor(clock)
    runs: list[int] = []
    release = asyncio.Event()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("disk on fire")
        await release.wait()

    async def once() -> None:
        raise ValueError("bad row")

    supervisor.spawn("flaky", flaky, restart=True)
    supervisor.spawn("once", once())
    await wait_until(lambda: supervisor.state("flaky")["state"] == "restarting")
    health = supervisor.health()
    assert health["ok"] is False
    assert health["tasks"]["flaky"] == {
        "state": "restarting",
        "restarts": 1,
        "lastError": "RuntimeError('disk on fire')",
    }
    assert health["tasks"]["once"] == {"state": "failed", "lastError": "ValueError('bad row')"}
    await clock.advance(RESTART_FIRST)
    await wait_until(lambda: len(runs) == 2)
    assert supervisor.state("flaky")["state"] == "running"
    # A task that ends normally leaves the list; a failed one stays until replaced.
    release.set()
    await wait_until(lambda: supervisor.state("flaky") is None)
    supervisor.spawn("once", asyncio.sleep(0))
    await wait_until(lambda: supervisor.state("once") is None)
    assert supervisor.health()["ok"] is True
    await supervisor.stop()


async def test_spawn_refuses_a_name_in_use_and_restart_without_a_factory() -> None:
    # Names identify tasks on /readyz: two at once under one name would hide one.
    supervisor = TaskSupervisor()
    supervisor.spawn("x", asyncio.Event().wait())
    with pytest.raises(RuntimeError, match="already running"):
        supervisor.spawn("x", asyncio.sleep(0))
    with pytest.raises(TypeError):
        supervisor.spawn("y", asyncio.sleep(0), restart=True)
    await supervisor.stop()
    assert supervisor.health()["tasks"] == {}


@pytest.fixture
def daemon(settings: Settings, clock: ManualClock) -> Daemon:
    return Daemon(settings, clock=clock)


async def test_readyz_lists_the_daemons_background_tasks(
    client: TestClient, daemon: Daemon
) -> None:
    # The long-lived loops of a running daemon are supervisor tasks, each with its state.
    ready = await (await client.get("/readyz")).json()
    tasks = ready["components"]["tasks"]["tasks"]
    for name in ("store:writer", "screens:ping", "archiver"):
        assert tasks[name] == {"state": "running"}, tasks


async def test_metrics_count_the_tasks_by_state(client: TestClient) -> None:
    # /metrics has the supervisor's tasks by state, for an alert on "restarting" or "failed".
    text = await (await client.get("/metrics")).text()
    running = next(
        line for line in text.splitlines() if line.startswith('kds_tasks{state="running"}')
    )
    assert float(running.split()[-1]) >= 3
    assert 'kds_tasks{state="failed"} 0.0' in text and 'kds_tasks{state="restarting"} 0.0' in text
