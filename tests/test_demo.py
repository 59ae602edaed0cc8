"""`kds demo` as the README runs it: orders arrive from every POS kind, tickets reach the virtual printer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import websockets

from .util import ROOT, free_port

POS = {"native", "portos", "ready2order", "cheques"}


async def test_demo_runs_every_pos_kind(tmp_path: Path) -> None:
    # The demo on the repo's config.toml: the live feed shows orders from all four POS kinds and
    # bar tickets delivered by the virtual printer, whose log holds the decoded ticket text.
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kds.cli", "demo", "--config", str(ROOT / "config.toml"), "--rate", "240",
        "--listen", f"127.0.0.1:{port}", "--db", str(tmp_path / "demo.sqlite3"),
        "--printer-log-dir", str(tmp_path / "printers"), "--seed", "7",
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "kds demo is running" in banner, banner + (await proc.stdout.read(4000)).decode()
        assert f"http://127.0.0.1:{port}/screen/grill" in (await proc.stdout.readline()).decode()
        seen: set[str] = set()
        printed = False
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", max_size=None) as ws:

            async def watch() -> None:
                nonlocal printed
                while not (seen >= POS and printed):
                    message = json.loads(await ws.recv())
                    orders = message.get("orders") or ([message["order"]] if "order" in message else [])
                    for order in orders:
                        seen.add(order["source"])
                        printed |= order.get("endpointStatuses", {}).get("bar") in ("delivered", "processed")

            await asyncio.wait_for(watch(), 60)
        log = (tmp_path / "printers" / "bar.jsonl").read_text().splitlines()
        assert log and "BAR" in json.loads(log[0])["text"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0
