"""Growth with work, a wide fan-out and the idle cost (`wide`, `scale`, `idle` phases).

* wide: `wide_screens` (1,000) screens; one status change at a time (paced at
  `wide_rate`), the delay until the *last* screen has it, p99 over the changes;
  the bare broadcast to as many sockets, same payload and pace, its changes
  alternated with kds's.
* scale: one database grown to each of `scale` (1k, 10k, 50k) open orders; at each
  size kds is restarted (timed from spawn to `/readyz` 200, median of `restarts`)
  and its RSS taken with `screens` (50) screens holding their snapshots. The note
  says whether both grow at most linearly: the cost per order of the last step is
  compared with the first step's (the first size carries the fixed cost, so the
  increments are what grows), within the spread of the restarts at each size.
* idle: a fresh kds with `idle_screens` (10) screens and no orders; the CPU it uses
  over `idle_seconds` (30 s), in percent of one core.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import statistics
import time
from typing import TYPE_CHECKING

import aiohttp

from .load import Run, Screens, encoded_orders, ingest, percentile
from .servers import BYTECODE_NOTE, baseline_broadcast_server, cpu_seconds

if TYPE_CHECKING:
    from .runner import Bench

MB = 1024 * 1024
#: Growth per order may be this much steeper at the large end and still count as linear
#: (one restart on a shared machine moves by more than that).
LINEAR_SLACK = 1.5


def size_label(n: int) -> str:
    """1000 → "1k", 50000 → "50k", 300 → "300" (the figure keys' suffix)."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def raise_open_files(wanted: int) -> None:
    """Lift the soft open-file limit toward `wanted` (children inherit it): a socket per screen."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def wide_phase(bench: Bench) -> None:
    """One change → the last of `wide_screens` screens, p99; beside the bare broadcast to as
    many screens, their changes alternated one by one (see `Bench.interleaved`)."""
    o = bench.options
    raise_open_files(6 * o.wide_screens + 1024)  # kds's and the baseline's screens at once
    server = await bench.fresh_kds("wide")
    async with aiohttp.ClientSession() as session:
        changes, template = await bench.status_changes(session, server, "wide", o.wide_changes)
        screens = Screens(
            [f"ws://127.0.0.1:{server.port}/api/v1/ws"] * o.wide_screens,
            "order.updated",
            snapshot=True,
            deflate=o.deflate,
        )
        await screens.open(timeout=120)
        base = bench.start(baseline_broadcast_server(bench.workdir, screens.compressed))
        await base.start()
        await bench.beside_baseline(
            session,
            Run("fanout1000", "fanout1000.cpu_ms_per_change", server.pid, changes, screens),
            base,
            template,
            "order.updated",
            rate=o.wide_rate,
            record=lambda run, result: _record_last(bench, run, result.sent),
            timeout=120,
        )


def _record_last(bench: Bench, run: Run, sent_all: dict[str, float]) -> None:
    key = run.key
    sent = {k: sent_all[k] for k, _, _ in run.requests}
    last = run.screens.last_arrivals(sent)
    bench.m[f"{key}.p50"] = percentile(last, 50) * 1000
    bench.m[f"{key}.p99"] = percentile(last, 99) * 1000
    if len(last) < len(sent):
        bench.errors.append(f"{key}: {len(sent) - len(last)} changes missed some screen")


async def scale_phase(bench: Bench) -> None:
    """RSS and restart time at each size of open orders, and whether they grow linearly."""
    o = bench.options
    server = await bench.fresh_kds("scale")
    stored = 0
    rss: dict[int, float] = {}
    walls: dict[int, list[float]] = {}  # seconds to ready of each restart, by size
    cpus: dict[int, list[float]] = {}  # CPU seconds to ready (every thread)
    for size in sorted(set(o.scale)):
        label = size_label(size)
        orders = encoded_orders(f"scale{bench.run_id}-{label}", size - stored)
        stats = await ingest(server.url + "/api/v1/orders", orders, o.concurrency)
        if stats.errors:
            raise RuntimeError(f"scale {label}: HTTP errors {stats.errors}")
        stored = size
        walls[size], cpus[size] = [], []
        for n in range(o.restarts):
            await server.stop()
            server = bench.start(server.again(f"kds-scale-{label}-{n}"))
            walls[size].append(await server.start(timeout=120))
            cpus[size].append(cpu_seconds(server.pid))
        bytes_, _ = await bench.rss_with_screens(server, f"scale-{label}")
        rss[size] = bytes_ / MB
        bench.m[f"scale.restart.{label}"] = statistics.median(walls[size])
        bench.m[f"scale.restart.{label}.cpu_s"] = statistics.median(cpus[size])
        bench.m[f"scale.rss.{label}"] = rss[size]
    bench.notes["scale.rss"] = _growth(rss, "MB")
    bench.linear["scale.rss"] = _linear(rss)
    note, bench.linear["scale.restart"] = restart_growth(walls, cpus)
    bench.notes["scale.restart"] = f"{note}; {BYTECODE_NOTE}"


def restart_growth(
    walls: dict[int, list[float]], cpus: dict[int, list[float]]
) -> tuple[str, bool | None]:
    """A note on the restarts at each size (seconds and CPU seconds to ready, by size) and
    whether they grow at most linearly, judged on the CPU time.

    Below ~10,000 orders kds reads them on a thread of its own while it imports the daemon:
    their wall time hides behind the imports, so the first step's wall time is nearly flat
    and any later step would look steeper. CPU time (every thread) hides nothing.
    """
    cpu_medians, cpu_spreads = _medians_and_spreads(cpus)
    note = (
        f"{_steps(*_medians_and_spreads(walls), 's')}; "
        f"CPU to ready: {_growth(cpu_medians, 's', cpu_spreads)}, judged on the CPU time "
        "(below ~10k orders kds reads them while it imports, which hides their wall time "
        "but not their CPU)"
    )
    return note, _linear(cpu_medians, cpu_spreads)


def _medians_and_spreads(
    samples: dict[int, list[float]],
) -> tuple[dict[int, float], dict[int, float]]:
    """The median of each size's samples, and how far they lie apart (max - min)."""
    medians = {n: statistics.median(values) for n, values in samples.items()}
    return medians, {n: max(values) - min(values) for n, values in samples.items()}


def _linear(values: dict[int, float], spreads: dict[int, float] | None = None) -> bool | None:
    """Whether the cost per order of the last step is at most that of the first (with slack).

    `spreads`: how far repeated measurements at each size lay apart (max - min). A value is
    then known to within half its spread, and growth counts as faster than linear only if
    the last step is steeper than the first even at the ends of that: a first step of
    9,000 orders is short beside a restart's noise, and noise must not pass for growth.
    """
    sizes = sorted(values)
    if len(sizes) < 3:
        return None
    half = {n: (spreads or {}).get(n, 0.0) / 2 for n in sizes}
    a, b = sizes[0], sizes[1]
    first = (values[b] - values[a] + half[a] + half[b]) / (b - a)
    y, z = sizes[-2], sizes[-1]
    last = (values[z] - values[y] - half[y] - half[z]) / (z - y)
    return last <= max(first, 0) * LINEAR_SLACK or last <= 0


def _growth(values: dict[int, float], unit: str, spreads: dict[int, float] | None = None) -> str:
    """A note: `_steps` and the verdict."""
    verdict = _linear(values, spreads)
    word = {True: "at most linear", False: "FASTER than linear", None: "not judged"}[verdict]
    return f"{_steps(values, spreads, unit)}: growth {word}"


def _steps(values: dict[int, float], spreads: dict[int, float] | None, unit: str) -> str:
    """Each size's value (± half its spread) and the increment per 1,000 orders per step."""
    sizes = sorted(values)
    parts = [
        f"{size_label(n)} {values[n]:.2f} {unit}"
        + (f" (±{spreads[n] / 2:.2f})" if spreads and n in spreads else "")
        for n in sizes
    ]
    steps = [
        f"{size_label(a)}→{size_label(b)} "
        f"{(values[b] - values[a]) * 1000 / (b - a):+.3f} {unit} per 1,000 orders"
        for a, b in itertools.pairwise(sizes)
    ]
    return f"{', '.join(parts)}; {', '.join(steps)}"


async def idle_phase(bench: Bench) -> None:
    """Percent of one core kds uses with `idle_screens` screens and no orders."""
    o = bench.options
    server = await bench.fresh_kds("idle")
    screens = Screens(
        bench.screen_urls(server.port, o.idle_screens), "order.created", snapshot=True
    )
    await screens.open()
    try:
        cpu, wall = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.sleep(o.idle_seconds)  # the measurement window itself
        used = cpu_seconds(server.pid) - cpu
        bench.m["idle.cpu"] = used / (time.perf_counter() - wall) * 100
    finally:
        await screens.close()
