"""Sampling a running kds with py-spy during a bench phase, and summing the samples.

`kds bench --profile DIR` records each kds phase to `DIR/<phase>.txt` (py-spy's
raw collapsed stacks) and writes `DIR/<phase>-top.txt`: the functions that hold
the most samples, by own time and by time including callees.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_LINENO = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    """The py-spy executable, if installed (the `profile` extra), next to this Python or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@asynccontextmanager
async def recording(pid: int, directory: Path | None, phase: str) -> AsyncIterator[Path | None]:
    """Record `pid` with py-spy while the block runs (nothing when `directory` is None)."""
    exe = py_spy() if directory is not None else None
    if exe is None or directory is None:
        yield None
        return
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{phase}.txt"
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)
        if out.exists():
            (directory / f"{phase}-top.txt").write_text(
                summarise(out.read_text()), encoding="utf-8"
            )


def _frame(frame: str) -> str:
    # "send_str (aiohttp/web_ws.py:123)" -> "send_str (aiohttp/web_ws.py)": a function, not a line.
    return _LINENO.sub(")", frame.strip())


def summarise(raw: str, top: int = 40) -> str:
    """Own and inclusive sample shares per function from py-spy raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        count = int(match["count"])
        frames = match["stack"].split(";")
        if frames and frames[0].startswith(("thread ", "process ")):
            threads[frames[0]] += count
            frames = frames[1:]
        if not frames:
            continue
        total += count
        names = [_frame(f) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "no samples\n"
    out = [f"{total} samples"]
    if threads:
        out.append("\nby thread:")
        out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common()]
    out.append("\nown time (the function itself):")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("\nincluding callees:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out) + "\n"
