"""Processes the bench starts: kds itself and the two bare baselines.

Each runs as its own subprocess on 127.0.0.1, so the load generator and the
server never share an event loop (as with real tills and screens).
"""

from __future__ import annotations

import asyncio
import compileall
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

import kds

ROUTING = """
[routing]
default_endpoint = "grill"
rules = [
  { product_group = "Drinks", endpoint = "bar" },
  { name_pattern = "*salad*", endpoint = "cold" },
]
"""

CONFIG = """# written by kds bench: three display endpoints, durable commits, no rate limit
[server]
listen = "127.0.0.1:0"

[database]
path = "{db}"
synchronous = "{synchronous}"

[logging]
level = "warning"
format = "json"

[security]
ingest_rate = 0
{endpoints}
{routing}
[[sources]]
type = "native"
{sources}"""

#: Three display endpoints, one per station the bench's orders reach.
DISPLAY_ENDPOINTS = """
[[endpoints]]
name = "grill"
display = true

[[endpoints]]
name = "cold"
display = true

[[endpoints]]
name = "bar"
display = true
"""

#: The station screens the bench connects, round robin; every bench order has an item at each.
ENDPOINTS = ("grill", "cold", "bar")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    directory: Path,
    db: Path,
    synchronous: str = "FULL",
    *,
    name: str = "bench",
    endpoints: str = DISPLAY_ENDPOINTS,
    routing: str = ROUTING,
    sources: str = "",
) -> Path:
    """The bench's own config (`{name}.toml` in `directory`); the defaults: three display stations."""
    path = directory / f"{name}.toml"
    path.write_text(
        CONFIG.format(
            db=db, synchronous=synchronous, endpoints=endpoints, routing=routing, sources=sources
        ),
        encoding="utf-8",
    )
    return path


#: How the servers the bench starts load kds (the restart figures' notes say it).
BYTECODE_NOTE = "kds started from byte-compiled modules, as an installed kds is"


def server_env() -> dict[str, str]:
    """The environment of a server the bench starts: Python's own bytecode caching.

    A deployed kds (`pip install`, systemd) imports its modules from cached bytecode. A
    PYTHONDONTWRITEBYTECODE in the bench's environment (an editable install on a dev box)
    would have every timed restart compile kds's sources again (~0.14 s a start here).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_kds() -> None:
    """Byte-compile kds's package where it is stale, as `pip install` does: no timed start compiles it."""
    compileall.compile_dir(Path(kds.__file__).parent, quiet=1)


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (VmRSS)."""
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of `pid` (VmHWM)."""
    return _status_kb(pid, "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (all its threads), to the nanosecond."""
    # /proc/PID/stat counts in 10 ms clock ticks: a short phase's few ms read as 0 or 10.
    # The process's CPU-time clock is the scheduler's own nanosecond count.
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        raise ProcessLookupError(f"no CPU clock for pid {pid}")
    return time.clock_gettime_ns(clock.value) / 1e9


_libc = ctypes.CDLL(None)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


class Server:
    """A subprocess serving HTTP on 127.0.0.1:port with a readiness route."""

    def __init__(
        self, name: str, argv: list[str], port: int, log_path: Path, ready_path: str = "/readyz"
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None

    def again(self, name: str) -> Server:
        """The same command on the same port, as a new process to start (a restart)."""
        return Server(
            name, self.argv, self.port, self.log_path.with_name(f"{name}.log"), self.ready_path
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> float:
        """Start the process; return seconds from spawn to the first 200 from the ready route."""
        with open(self.log_path, "ab") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(),
            )
        deadline = started + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}: {self._log_tail()}"
                    )
                try:
                    async with session.get(
                        self.url + self.ready_path, timeout=aiohttp.ClientTimeout(total=1)
                    ) as r:
                        if r.status == 200:
                            return time.perf_counter() - started
                except (TimeoutError, aiohttp.ClientError):
                    pass
                if time.perf_counter() > deadline:
                    await self.stop()
                    raise RuntimeError(
                        f"{self.name} not ready within {timeout}s: {self._log_tail()}"
                    )
                # Polling a subprocess for readiness: 5 ms bounds the error of the restart figure.
                await asyncio.sleep(0.005)

    async def stop(self) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL after 15 s)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL if still running (cleanup after an error)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def kds_server(directory: Path, config: Path, db: Path, name: str = "kds") -> Server:
    """`kds run` on a free port with the bench config and database `db`."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "kds.cli",
        "run",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--db",
        str(db),
    ]
    return Server(name, argv, port, directory / f"{name}.log")


def baseline_ingest_server(
    directory: Path, synchronous: str = "FULL", db: Path | None = None
) -> Server:
    """The bare aiohttp + SQLite ingest handler (on `db`, default `baseline.sqlite3` in `directory`)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "kds.bench.baseline_ingest",
        "--port",
        str(port),
        "--db",
        str(db or directory / "baseline.sqlite3"),
        "--synchronous",
        synchronous,
    ]
    return Server("baseline-ingest", argv, port, directory / "baseline-ingest.log")


def baseline_restart_server(directory: Path, db: Path, name: str) -> Server:
    """The bare restart: aiohttp reading kds's database `db` into dicts, then serving."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "kds.bench.baseline_restart",
        "--port",
        str(port),
        "--db",
        str(db),
    ]
    return Server(name, argv, port, directory / f"{name}.log")


def baseline_broadcast_server(directory: Path, compress: bool) -> Server:
    """The bare aiohttp websocket broadcast (with permessage-deflate when `compress`)."""
    port = free_port()
    argv = [sys.executable, "-m", "kds.bench.baseline_broadcast", "--port", str(port)] + (
        ["--compress"] if compress else []
    )
    return Server("baseline-broadcast", argv, port, directory / "baseline-broadcast.log")
