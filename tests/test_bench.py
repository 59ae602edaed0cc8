"""`kds bench` runs end to end at a tiny size and reports every figure (not its timings)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kds.bench import options_from_args
from kds.bench.baseline_broadcast import CLIENTS
from kds.bench.baseline_broadcast import build_app as broadcast_app
from kds.bench.load import Run, Screens, external_id, ingest, percentile
from kds.bench.profile import summarise
from kds.bench.report import Figure, Report
from kds.bench.runner import Bench, Options
from kds.bench.servers import cpu_seconds
from kds.cli import build_parser

from .util import run_bench

FIGURES = {
    "ingest.rate",
    "ingest.p50",
    "ingest.p99",
    "screen.p50",
    "screen.p99",
    "fanout.p99",
    "restart",
    "rss",
    "render",
    "print.p99",
    "webhook.ready2order.p99",
    "webhook.portos.p99",
    "fanout1000.p99",
    "scale.rss.20",
    "scale.rss.40",
    "scale.rss.80",
    "scale.restart.20",
    "scale.restart.40",
    "scale.restart.80",
    "idle.cpu",
    "reports",
}
WITH_BASELINE = {
    "restart",
    "ingest.rate",
    "ingest.p50",
    "ingest.p99",
    "screen.p50",
    "screen.p99",
    "fanout.p99",
    "fanout1000.p99",
}
#: Figures whose value may be 0 at this size (idle CPU over a second: under one clock tick).
MAY_BE_ZERO = {"idle.cpu"}
TINY = [
    "--orders",
    "60",
    "--restarts",
    "1",
    "--concurrency",
    "4",
    "--screens",
    "3",
    "--rate",
    "40",
    "--duration",
    "0.5",
    "--fanout-screens",
    "4",
    "--fanout-changes",
    "5",
    "--renders",
    "5",
    "--webhook-samples",
    "5",
    "--wide-screens",
    "6",
    "--wide-changes",
    "4",
    "--scale",
    "20,40,80",
    "--idle-seconds",
    "1",
]


def test_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    # Guarantees: the whole bench (kds, both baselines, render) runs from the CLI, every figure
    # has a value, the ones with a baseline have one, no phase failed, and nothing is left running.
    proc, report = run_bench(tmp_path, *TINY)
    figures = {f["key"]: f for f in report["figures"]}
    assert set(figures) == FIGURES
    for key, figure in figures.items():
        assert isinstance(figure["value"], (int, float)), figure
        assert figure["value"] > 0 or key in MAY_BE_ZERO, figure
        if key in WITH_BASELINE:
            assert figure["baseline"] and figure["ratio"], figure
        assert figure["passed"] in (True, False, None)
    # Exit code says whether every target was met.
    assert proc.returncode == (0 if report["passed"] else 1)
    assert report["setup"]["orders"] == 60
    # Ingest runs in rounds on fresh databases for kds and baseline; the fastest is the figure.
    details = report["setup"]["details"]
    for key in ("ingest", "base.ingest"):
        rates = [details[f"{key}.round{n}.rate"] for n in (1, 2)]
        assert details[f"{key}.rate"] == max(rates)
    assert "fastest of 2 rounds" in figures["ingest.rate"]["note"]
    # Restart beside a bare start reading the same orders, in turn: a ratio that holds across
    # the hours of a box whose speed changes by two.
    assert "baseline" in figures["restart"]["note"]
    assert figures["restart"]["passed"] is (figures["restart"]["value"] <= 1)
    # CPU per change beside the wide fan-out's baseline (steadier than its times on a busy box).
    # The test's few changes cost less than one 10 ms clock tick: read to the nanosecond, not 0.
    assert details["fanout1000.cpu_ms_per_change"] > 0
    assert details["base.fanout1000.cpu_ms_per_event"] > 0
    # Growth says whether it is at most linear, on the largest size's figure.
    for what in ("rss", "restart"):
        assert "linear" in figures[f"scale.{what}.80"]["note"]
        assert figures[f"scale.{what}.80"]["passed"] in (True, False)
    # Every server was stopped: the logs say so and no process still holds the databases.
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


_BURST = """
import sys, time
print("ready", flush=True)
for line in sys.stdin:
    start = time.process_time()
    while time.process_time() - start < 0.003:
        pass
    print("done", flush=True)
"""


def test_a_servers_cpu_time_is_read_finer_than_a_clock_tick() -> None:
    # Guarantees: a short phase's few milliseconds of server CPU are not rounded to 0 or 10 ms by
    # the clock tick of /proc/PID/stat (the tiny bench's fan-out read 0.0 ms per change).
    server = subprocess.Popen(
        [sys.executable, "-c", _BURST], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin and server.stdout
    try:
        assert server.stdout.readline() == "ready\n"
        for _ in range(5):
            _wait_until_asleep(server.pid)
            before = cpu_seconds(server.pid)
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.stdout.readline() == "done\n"
            _wait_until_asleep(server.pid)  # off the CPU: the kernel has counted its burst
            assert 0.003 <= cpu_seconds(server.pid) - before < 0.006
    finally:
        server.kill()
        server.wait()


def _wait_until_asleep(pid: int) -> None:
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "S":
        assert time.monotonic() < deadline, "the process never went back to reading its input"


def test_table_has_a_row_per_figure_and_a_verdict() -> None:
    # Guarantees: the table shows value, baseline, ratio, target and pass/fail per figure.
    report = Report()
    report.add(
        Figure("a", "rate", "orders/s", 2500.0, 1000.0, "≥ 2,000", lambda f: f.value >= 2000)
    )
    report.add(Figure("b", "p99", "ms", 40.0, 10.0, "≤ 3× baseline", lambda f: (f.ratio or 0) <= 3))
    report.add(Figure("c", "render", "ms", math.nan, None, "≤ 2", lambda f: f.value <= 2))
    table = report.table()
    assert "| rate (orders/s) | 2,500 | 1,000    | 2.50× | ≥ 2,000" in table
    assert "| p99 (ms)" in table and "4.00×" in table and "FAIL" in table
    assert report.figures[0].passed is True and report.figures[1].passed is False
    assert report.figures[2].passed is False  # a figure that was not measured fails its target
    assert not report.passed
    data = json.loads(report.json())
    assert data["figures"][2]["value"] is None and data["passed"] is False


def test_percentile_and_event_matching() -> None:
    # Guarantees: nearest-rank percentiles; the externalId is the order's own, found without parsing.
    values = list(range(1, 101))
    assert (
        percentile(values, 50) == 50
        and percentile(values, 99) == 99
        and percentile([7.0], 99) == 7.0
    )
    assert math.isnan(percentile([], 50))
    message = '{"type":"order.created","seq":3,"order":{"id":"x","externalId":"ing-7","items":[]}}'
    assert external_id(message.encode()) == "ing-7"
    assert external_id(b'{"type":"ping"}') is None


def test_one_stall_of_the_server_does_not_decide_the_fan_outs_p99() -> None:
    # Guarantee: fanout.p99 (every screen's delay of every change) is taken over enough
    # changes that one ~110 ms stall (an fsync or the host, seen once in a full run on
    # 2026-12-03: 92 ms against 8-10 ms in every other run) does not set it. A stall
    # delays the change in flight and those queued behind it, at the bench's pace.
    options = Options()
    screens, spacing = options.fanout_screens, 1000 / options.rate
    stall = [110 - n * spacing for n in range(int(110 // spacing) + 1)]
    delays = [5.0] * ((options.fanout_changes - len(stall)) * screens)
    delays += [d + 5.0 for d in stall for _ in range(screens)]
    assert percentile(delays, 99) <= 50  # the figure's absolute target


def test_profile_summary_counts_own_and_inclusive_time() -> None:
    # Guarantees: py-spy raw stacks are summed per function (line numbers merged), by thread.
    raw = (
        "thread (1): MainThread;main (a.py:1);handle (b.py:10);encode (c.py:5) 30\n"
        "thread (1): MainThread;main (a.py:1);handle (b.py:12) 10\n"
        "thread (2): worker;run (d.py:3) 60\n"
    )
    text = summarise(raw)
    assert text.startswith("100 samples")
    assert " 60.0%  run (d.py)" in text
    assert " 30.0%  encode (c.py)" in text
    assert " 40.0%  handle (b.py)" in text.split("including callees:")[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench"], {"orders": 10_000, "duration": 10.0, "screens": 50, "fanout_screens": 200}),
        (["bench", "--quick"], {"orders": 2_000, "duration": 3.0, "screens": 50}),
        (
            ["bench", "--quick", "--orders", "500", "--only", "ingest,render"],
            {"orders": 500, "phases": ("ingest", "render")},
        ),
    ],
)
def test_options_from_the_command_line(argv: list[str], expected: dict[str, object]) -> None:
    # Guarantees: --quick sets smaller sizes, explicit flags win, --only picks phases.
    options = options_from_args(build_parser().parse_args(argv))
    for key, value in expected.items():
        assert getattr(options, key) == value


def test_bad_options_are_refused() -> None:
    # Guarantees: sizes below one and unknown phases are errors, not silent no-ops.
    with pytest.raises(ValueError, match="--orders"):
        options_from_args(build_parser().parse_args(["bench", "--orders", "0"]))
    with pytest.raises(ValueError, match="unknown phase"):
        options_from_args(build_parser().parse_args(["bench", "--only", "ingest,warp"]))


async def test_screens_gather_a_paged_snapshot_then_time_events(aiohttp_server: Any) -> None:
    # Guarantees: a screen's snapshot may come in pages ("more": true until the last); it is
    # complete only after the last page, and events after it are timestamped per externalId.
    pages = [
        '{"type":"snapshot","seq":1,"more":true,"orders":[]}',
        '{"type":"snapshot","seq":1,"orders":[],"more":false}',
    ]
    event = '{"type":"order.created","seq":2,"order":{"id":"k1","externalId":"ext-1"}}'
    go = asyncio.Event()

    async def feed(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for page in pages:
            await ws.send_str(page)
        await go.wait()
        await ws.send_str('{"type":"ping"}')
        await ws.send_str(event)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", feed)
    server = await aiohttp_server(app)
    screens = Screens([f"ws://127.0.0.1:{server.port}/ws"] * 3, "order.created", snapshot=True)
    await screens.open(timeout=5)
    assert screens.snapshot_bytes == 3 * sum(len(p) for p in pages)
    screens.expect(1)
    go.set()
    await screens.wait(5)
    delays, missing = screens.latencies({"ext-1": 0.0})
    assert missing == 0 and len(delays) == 3
    assert len(screens.spreads()) == 1
    await screens.close()


async def test_tills_post_every_order_once_and_count_what_was_not_stored(
    aiohttp_server: Any,
) -> None:
    # Guarantees: the ingest load posts each order exactly once over its keep-alive
    # connections, keeps the 201 answers' bodies whole (small and large, however the server
    # splits them), counts every other answer by status, a connection dropped without an
    # answer as status 0 (not retried: a retry could store the order twice), and opens a
    # new connection after an answer with `Connection: close` or a dropped one.
    received: list[str] = []
    peers: set[int] = set()

    async def orders(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        received.append(body["id"])
        peers.add(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        kind = body["id"].split("-")[0]
        if kind == "bad":
            return web.json_response({"error": "bad_request"}, status=400)
        if kind == "drop":
            request.transport.close()  # type: ignore[union-attr]
            await asyncio.get_running_loop().create_future()  # no answer, ever
        answer = web.json_response({"id": body["id"], "pad": "x" * body.get("pad", 0)}, status=201)
        if kind == "close":
            answer.force_close()
        return answer

    app = web.Application()
    app.router.add_post("/api/v1/orders", orders)
    server = await aiohttp_server(app)
    # The first four orders open the four connections: two of them end after their answer.
    posted = ["close-1", "drop-1"] + [f"ok-{i}" for i in range(40)] + ["bad-1", "big-1", "bad-2"]
    bodies = [
        (ext, json.dumps({"id": ext, "pad": 200_000 if ext == "big-1" else 0}).encode())
        for ext in posted
    ]
    stats = await ingest(
        f"http://127.0.0.1:{server.port}/api/v1/orders", bodies, 4, keep_bodies=True
    )
    assert sorted(received) == sorted(posted)  # each once
    assert stats.count == len(posted) and len(stats.latencies) == len(posted)
    assert stats.errors == {400: 2, 0: 1}
    answers = {json.loads(b)["id"]: json.loads(b) for b in stats.bodies}
    assert set(answers) == set(posted) - {"bad-1", "bad-2", "drop-1"}
    assert len(answers["big-1"]["pad"]) == 200_000
    assert len(peers) > 4  # reconnected after the closed and the dropped connection


async def test_kds_and_its_baseline_are_paced_alternately(aiohttp_server: Any) -> None:
    # Guarantees: two runs (kds's and its baseline's) are not measured one after the other but
    # request by request in turn, each at the bench's rate, so a box that slows down in the
    # middle slows both; each run's delays, answers and CPU are recorded under its own key.
    arrivals: list[str] = []

    def recorded(name: str) -> web.Application:
        @web.middleware
        async def note(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path == "/publish":
                arrivals.append(name)
            return await handler(request)

        app = broadcast_app()
        app.middlewares.append(note)
        app[CLIENTS] = registered[name] = _Registered()
        return app

    registered: dict[str, _Registered] = {}

    servers = {name: await aiohttp_server(recorded(name)) for name in ("a", "b")}
    bench = Bench(Options.quick(rate=200.0))
    runs = []
    for name, server in servers.items():
        body = '{"id":"x","externalId":"%s"}'
        requests = [
            (f"{name}-{i}", str(server.make_url("/publish")), (body % f"{name}-{i}").encode())
            for i in range(10)
        ]
        screens = Screens([f"ws://127.0.0.1:{server.port}/ws"] * 2, "order.created", snapshot=False)
        await screens.open(timeout=5)
        runs.append(Run(name, f"{name}.cpu_ms", os.getpid(), requests, screens))
    async with asyncio.timeout(5):  # the broadcast registers a screen after its handshake
        for clients in registered.values():
            await clients.reach(2)
    async with aiohttp.ClientSession() as session:
        result = await bench.interleaved(session, runs)
    for run in runs:
        bench.record_delays(run, result)
    for run in runs:
        await run.screens.close()
    assert arrivals == ["a", "b"] * 10
    assert bench.errors == []
    for name in servers:
        assert bench.m[f"{name}.p99"] > 0 and bench.m[f"{name}.answer.p99"] > 0
        assert bench.m[f"{name}.cpu_ms"] > 0


class _Registered(set[web.WebSocketResponse]):
    """The broadcast's screens (its CLIENTS), telling a waiter each time one registers."""

    def __init__(self) -> None:
        super().__init__()
        self._added = asyncio.Event()

    def add(self, ws: web.WebSocketResponse) -> None:
        super().add(ws)
        self._added.set()

    async def reach(self, count: int) -> None:
        """Until at least `count` screens are registered."""
        while len(self) < count:
            self._added.clear()
            await self._added.wait()


def test_growth_verdict_compares_the_cost_per_order_of_the_steps() -> None:
    # Guarantees: growth counts as linear while the last step costs per order at most 1.5× the
    # first (the smallest size carries the fixed cost); keys name sizes as 1k/10k/50k.
    from kds.bench.scale import _growth, _linear, size_label

    assert [size_label(n) for n in (1_000, 10_000, 50_000, 300)] == ["1k", "10k", "50k", "300"]
    linear = {1_000: 60.0, 10_000: 96.0, 50_000: 256.0}  # 4 MB per 1,000 orders throughout
    quadratic = {1_000: 60.0, 10_000: 96.0, 50_000: 600.0}
    assert _linear(linear) is True and _linear(quadratic) is False
    assert _linear({1_000: 1.0, 10_000: 2.0}) is None
    note = _growth(linear, "MB")
    assert "1k→10k +4.000 MB per 1,000 orders" in note and note.endswith("at most linear")
    assert _growth(quadratic, "MB").endswith("FASTER than linear")


def test_growth_verdict_takes_the_spread_of_repeated_restarts_into_account() -> None:
    # Guarantees: a restart is timed several times per size; a first step of 9,000 orders is
    # short beside how far those times lie apart, so growth is called faster than linear only
    # when the steps differ by more than the spread allows, and the note shows each spread.
    # Run a of 2026-12-02 19:15: 1k 0.48 s, 10k 0.58 s, 50k 1.41 s (~0.1 s apart at each).
    from kds.bench.scale import _growth, _linear

    restart = {1_000: 0.483, 10_000: 0.577, 50_000: 1.41}
    assert _linear(restart) is False  # the medians alone: 10 against 21 ms per 1,000 orders
    spreads = {1_000: 0.12, 10_000: 0.1, 50_000: 0.1}
    assert _linear(restart, spreads) is True
    # A last step far steeper than any spread explains is still caught.
    assert _linear({1_000: 0.48, 10_000: 0.58, 50_000: 4.0}, spreads) is False
    note = _growth(restart, "s", spreads)
    assert "1k 0.48 s (±0.06)" in note and note.endswith("at most linear")


def test_restart_growth_is_judged_on_the_cpu_time_to_ready() -> None:
    # Guarantees: below ~10,000 orders kds reads its orders on a second thread while it
    # imports, so their wall time hides behind the imports and the first step looks flat
    # (run b of 2026-12-03 05:05: 1k 0.45 s, 10k 0.46 s, 50k 1.65 s read as FASTER than
    # linear). The CPU time to ready (every thread) hides nothing: growth is judged on it,
    # and the note gives both.
    from kds.bench.scale import restart_growth

    walls = {1_000: [0.44, 0.45, 0.45], 10_000: [0.46, 0.46, 0.46], 50_000: [1.60, 1.65, 1.71]}
    cpus = {1_000: [0.40, 0.41, 0.41], 10_000: [0.66, 0.67, 0.67], 50_000: [1.86, 1.90, 1.95]}
    note, linear = restart_growth(walls, cpus)
    assert linear is True
    assert "1k 0.45 s" in note and "CPU to ready: 1k 0.41 s" in note
    assert "growth at most linear, judged on the CPU time" in note
    steeper_walls, steeper_cpus = (
        {**walls, 50_000: [3.2, 3.3, 3.4]},
        {**cpus, 50_000: [4.0, 4.1, 4.2]},
    )
    note, linear = restart_growth(steeper_walls, steeper_cpus)
    assert linear is False and "growth FASTER than linear" in note


#: A server for Server.start: writes whether it may write bytecode, then serves its directory
#: (a file `readyz` in it is the ready route).
_FLAG_SERVER = (
    "import functools, http.server, sys\n"
    "open(sys.argv[1] + '/flag', 'w').write(str(sys.flags.dont_write_bytecode))\n"
    "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), handler).serve_forever()\n"
)


async def test_servers_start_from_compiled_bytecode_as_a_deployment_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Guarantees: a PYTHONDONTWRITEBYTECODE in the bench's environment (this dev box sets it)
    # does not reach the servers it times, and kds's package is byte-compiled before the runs,
    # as `pip install` leaves it: a timed restart reads cached bytecode, as a deployed kds does.
    import importlib.util
    import sys

    import kds
    from kds.bench.servers import Server, compile_kds, free_port

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    (tmp_path / "readyz").write_text("ok")
    port = free_port()
    argv = [sys.executable, "-c", _FLAG_SERVER, str(tmp_path), str(port)]
    server = Server("flag", argv, port, tmp_path / "flag.log")
    try:
        await server.start()
    finally:
        await server.stop()
    assert (tmp_path / "flag").read_text() == "0"

    await asyncio.to_thread(compile_kds)
    package = Path(kds.__file__).parent
    sources = list(package.rglob("*.py"))
    assert len(sources) > 50
    stale = [
        s
        for s in sources
        if not (cached := Path(importlib.util.cache_from_source(str(s)))).exists()
        or cached.stat().st_mtime < s.stat().st_mtime
    ]
    assert stale == []
