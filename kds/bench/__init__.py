"""`kds bench`: latency, throughput, memory and render figures beside bare baselines.

Starts kds (and two bare aiohttp baselines) as subprocesses on 127.0.0.1 in a
temporary directory, drives them from this process, and prints a table of each
figure with its baseline, ratio, target and pass/fail (`--json`: the same as JSON).
See docs/bench.md and `runner.py` for what each phase does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..logs import setup_logging
from .profile import py_spy
from .runner import PHASES, Bench, Options


def register(subparsers: Any) -> None:
    """Add `kds bench` to the CLI."""
    p = subparsers.add_parser(
        "bench",
        help="measure ingest, live feed, printing, webhooks, growth, idle and render against baselines",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--quick", action="store_true", help="a smaller run (2,000 orders, 3 s paced phases)"
    )
    p.add_argument(
        "--orders", type=int, help="orders for ingest, restart and memory (default 10,000)"
    )
    p.add_argument("--concurrency", type=int, help="concurrent ingest connections (default 64)")
    p.add_argument(
        "--screens", type=int, help="screens for ingest → screen and memory (default 50)"
    )
    p.add_argument(
        "--rate", type=float, help="orders or changes per second in the paced phases (default 50)"
    )
    p.add_argument("--duration", type=float, help="seconds of paced ingest → screen (default 10)")
    p.add_argument(
        "--fanout-screens", type=int, help="screens for the fan-out figure (default 200)"
    )
    p.add_argument("--fanout-changes", type=int, help="status changes fanned out (default 500)")
    p.add_argument("--renders", type=int, help="tickets rendered for the median (default 300)")
    p.add_argument(
        "--restarts", type=int, help="restarts timed; the figure is their median (default 3)"
    )
    p.add_argument(
        "--webhook-samples", type=int, help="POS changes timed per webhook source (default 100)"
    )
    p.add_argument(
        "--wide-screens", type=int, help="screens for the wide fan-out figure (default 1,000)"
    )
    p.add_argument("--wide-changes", type=int, help="changes fanned out widely (default 100)")
    p.add_argument(
        "--scale",
        metavar="N,N,N",
        help="open orders at which RSS and restart are measured (default 1000,10000,50000)",
    )
    p.add_argument(
        "--idle-seconds", type=float, help="seconds the idle CPU is measured over (default 30)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="ingest rounds for kds and the baseline, each on a fresh database; the fastest counts (default 2)",
    )
    p.add_argument(
        "--synchronous",
        choices=["FULL", "NORMAL"],
        help="SQLite durability for kds and baseline (default FULL)",
    )
    p.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        default=None,
        help="screens do not offer permessage-deflate (browsers do; default: offer it)",
    )
    p.add_argument(
        "--profile", type=Path, metavar="DIR", help="record kds with py-spy per phase into DIR"
    )
    p.add_argument(
        "--only",
        metavar="PHASES",
        help=f"run only these phases, comma-separated: {','.join(PHASES)}",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="measure kds on this PostgreSQL server (postgresql://user@host/db; makes and drops"
        " its own databases) beside a bare asyncpg baseline, and cross-node screen latency",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep databases and logs in DIR (default: a temp dir)",
    )
    p.set_defaults(func=cmd_bench)


def options_from_args(args: argparse.Namespace) -> Options:
    """Options from the command line: --quick sizes, then explicit flags."""
    names = (
        "orders",
        "concurrency",
        "screens",
        "rate",
        "duration",
        "fanout_screens",
        "fanout_changes",
        "renders",
        "restarts",
        "rounds",
        "webhook_samples",
        "wide_screens",
        "wide_changes",
        "idle_seconds",
        "synchronous",
        "deflate",
        "profile",
        "workdir",
    )
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if getattr(args, "only", None):
        phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
        unknown = set(phases) - set(PHASES)
        if unknown:
            raise ValueError(
                f"--only: unknown phase(s) {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}"
            )
        given["phases"] = phases
    if getattr(args, "scale", None):
        try:
            sizes = tuple(sorted({int(n) for n in args.scale.split(",") if n.strip()}))
        except ValueError:
            raise ValueError("--scale: comma-separated whole numbers of orders") from None
        if len(sizes) < 2 or sizes[0] < 1:
            raise ValueError("--scale: at least two sizes, each at least 1")
        given["scale"] = sizes
    options = Options.quick(**given) if args.quick else Options(**given)
    for name in (
        "orders",
        "concurrency",
        "screens",
        "fanout_screens",
        "fanout_changes",
        "renders",
        "restarts",
        "rounds",
        "webhook_samples",
        "wide_screens",
        "wide_changes",
    ):
        if getattr(options, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if options.rate <= 0 or options.duration <= 0 or options.idle_seconds <= 0:
        raise ValueError("--rate, --duration and --idle-seconds must be positive")
    return options


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the bench; exit 0 when every target is met, 1 otherwise."""
    options = options_from_args(args)
    # The simulators the bench runs in this process log to stderr, never into --json's stdout.
    setup_logging("warning")
    if options.profile is not None and py_spy() is None:
        print(
            "kds bench: --profile needs py-spy (pip install 'kds[profile]' or pip install py-spy); running without profiles",
            file=sys.stderr,
        )
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if getattr(args, "db", None):
        from .postgres import PgBench

        bench: Bench = PgBench(options, args.db, progress=progress)
    else:
        bench = Bench(options, progress=progress)
    report = asyncio.run(bench.run())
    print(report.json() if args.json else report.table())
    return 0 if report.passed else 1
