"""Helpers shared by the tests: configs, order bodies, waiting, a kds subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kds.clock import ManualClock

ROOT = Path(__file__).resolve().parent.parent


#: Printer settings that make retries quick in tests.
FAST_PRINTER = {
    "retry_initial": 0.02,
    "retry_max": 0.2,
    "attempts": 2,
    "connect_timeout": 1,
    "status_timeout": 0.3,
}


def printed_grill(address: str) -> list[dict[str, Any]]:
    """The test restaurant's stations with a (virtual) printer at the grill."""
    return [
        {"name": "grill", "display": True, "printer": {"address": address, **FAST_PRINTER}},
        {"name": "cold", "display": True},
        {"name": "bar", "display": True},
    ]


def base_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A small restaurant: grill, cold and bar screens, routing by product group."""
    config: dict[str, Any] = {
        "server": {"listen": "127.0.0.1:0"},
        "database": {"path": str(tmp_path / "kds.sqlite3")},
        "logging": {"level": "warning", "format": "json"},
        "endpoints": [
            {"name": "grill", "display": True, "timers": {"warn_after": "5m", "late_after": "10m"}},
            {"name": "cold", "display": True},
            {"name": "bar", "display": True},
        ],
        "routing": {
            "default_endpoint": "grill",
            "rules": [
                {"product_group": "Drinks", "endpoint": "bar"},
                {"product_code": 500, "endpoint": "cold"},
                {"name_pattern": "*salad*", "endpoint": "cold"},
            ],
        },
        "sources": [{"type": "native"}],
    }
    config.update(overrides)
    return config


def order_body(external_id: str = "pos-1", **overrides: Any) -> dict[str, Any]:
    """A PORTOS-shaped order: a burger for the grill, a beer for the bar."""
    body: dict[str, Any] = {
        "id": external_id,
        "number": None,
        "deviceName": "POS1",
        "user": {"userName": "anna"},
        "ticket": {
            "id": f"T-{external_id}",
            "name": "Table 5",
            "location": {"zoneName": "Terrace", "tableName": "5"},
            "purchaseType": "walkIn",
        },
        "items": [
            {
                "id": 1,
                "plu": {"name": "Cheeseburger", "code": 101},
                "quantity": {"amount": 2, "unit": "pcs"},
                "comment": "medium rare",
                "courseNumber": 1,
                "modifiers": ["no onion", "extra cheese"],
            },
            {
                "id": 2,
                "plu": {"name": "Pilsner", "code": 201, "group": "Drinks"},
                "quantity": {"amount": 1, "unit": "pcs"},
            },
        ],
    }
    body.update(overrides)
    if body["number"] is None:
        del body["number"]
    return body


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,
    interval: float = 0.01,
    *,
    tick: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`.

    `tick` runs between checks (`until` moves a ManualClock there).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        if tick is not None:
            await tick()
        await asyncio.sleep(interval)


async def advance_until(
    clock: ManualClock, predicate: Callable[[], Any], step: float, timeout: float = 5.0
) -> None:
    """Move `clock` on by `step` until `predicate()` holds; fail after `timeout` real seconds.

    Between steps the loop gets a moment for real I/O a timer started (a printer probe).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s of advancing the clock")
        await clock.advance(step)
        await asyncio.sleep(0.01)


async def until(
    clock: Any,
    predicate: Callable[[], Any | Awaitable[Any]],
    step: float = 1.0,
    timeout: float = 5.0,
) -> Any:
    """Wait until `predicate()` is truthy and return it; on a ManualClock, move it on by `step`
    between checks — for what a timer on the daemon's clock brings about (a poll, a retry)
    with real I/O in it. Fails after `timeout` real seconds."""

    async def tick() -> None:
        await clock.advance(step)

    return await wait_until(
        predicate, timeout, tick=tick if isinstance(clock, ManualClock) else None
    )


async def printed(clock: Any, printer: Any, n: int) -> list[Any]:
    """A virtual printer's first `n` jobs, moving the daemon's clock (polls, ticket windows)
    until they printed."""
    await until(clock, lambda: len(printer.jobs) >= n)
    return list(printer.jobs)


async def next_poll(poller: Any, clock: ManualClock) -> None:
    """Move `clock` on to a healthy poller's next poll and wait until it finished: one poll."""
    await wait_until(lambda: poller.waiting)
    count = poller.poll_count
    await clock.advance(poller.interval)
    await wait_until(lambda: poller.poll_count > count)


async def polls(poller: Any, clock: Any, n: int = 2) -> None:
    """Let `n` more polls of a source (`kds.sources.base.Poller`) finish.

    On a ManualClock, each time the poller waits for its next poll the clock is moved past
    the longest wait there can be (the capped backoff); the poll itself is real HTTP. On the
    system clock it just waits.
    """
    target = poller.poll_count + n
    while poller.poll_count < target:
        await wait_until(lambda: poller.waiting or poller.poll_count >= target)
        if poller.poll_count < target and isinstance(clock, ManualClock):
            await clock.advance(poller.max_backoff)
        elif poller.poll_count < target:
            await wait_until(lambda: poller.poll_count >= target)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write `config` as TOML (the subset our configs use)."""
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(config: dict[str, Any]) -> str:
    """Tables and arrays of tables of scalars/inline tables — enough for config.toml."""
    lines: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        else:
            lines.insert(0, f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


class KdsProcess:
    """`kds run` as a subprocess on 127.0.0.1 — for crash and browser tests."""

    def __init__(
        self,
        config_path: Path,
        db_path: Path,
        port: int | None = None,
        log_path: Path | None = None,
        wrapper: list[str] | None = None,
    ):
        self.wrapper = wrapper or []  # a command kds runs under, e.g. ["prlimit", "--nofile=256"]
        self.config_path = config_path
        self.db_path = db_path
        self.port = port or free_port()
        self.log_path = log_path or db_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> KdsProcess:
        """Start and wait until /readyz answers 200."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                "kds.cli",
                "run",
                "--config",
                str(self.config_path),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--db",
                str(self.db_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kds exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            threading.Event().wait(0.05)  # poll interval while the subprocess starts
        raise RuntimeError(f"kds not ready within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a power cut for the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait for a clean exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


def run_bench(workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`kds bench --json` from the CLI: the process and its report, in which no phase failed."""
    proc = subprocess.run(
        [sys.executable, "-m", "kds.cli", "bench", "--json", "--workdir", str(workdir), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == [], report["errors"]
    return proc, report
