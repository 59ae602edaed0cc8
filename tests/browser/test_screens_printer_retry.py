"""A cook fixes the printer and taps "Retry now": the waiting ticket prints at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kds.simulators.printer import read_log
from tests.util import ROOT, free_port

from .conftest import Api, Pages, expect, item, order, wait_for


@pytest.fixture
def bar_printer(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`kds virtual-printer` for the bar, switched off, with its HTTP control port."""
    port, control = free_port(), free_port()
    log = tmp_path / "bar.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "virtual-printer",
            "--port",
            str(port),
            "--control-port",
            str(control),
            "--mode",
            "offline",
            "--log",
            str(log),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(
            lambda: _control(control, "GET", "/state"),
            timeout=15,
            what="the virtual printer's control port",
        )
        yield {"address": f"127.0.0.1:{port}", "control": control, "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _control(port: int, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


@pytest.fixture
def kds_config(kds_config: dict[str, Any], bar_printer: dict[str, Any]) -> dict[str, Any]:
    # Retries 30 s apart: without the button the ticket would wait that long.
    bar = next(e for e in kds_config["endpoints"] if e["name"] == "bar")
    bar["printer"] = {
        "address": bar_printer["address"],
        "connect_timeout": 0.5,
        "attempts": 1,
        "retry_initial": 30,
        "retry_max": 30,
        # A hung printer holds a round until the test switches the printer, not a timer.
        "status_timeout": 60,
    }
    return kds_config


def test_retry_now_prints_the_waiting_ticket(
    api: Api, pages: Pages, bar_printer: dict[str, Any]
) -> None:
    # The bar's screen opens once the print failed: an open station's receipt could land first.
    board = pages.open("/board")
    created = api.post_order(order("r", item(1, "Pilsner", group="Drinks")))
    wait_for(
        lambda: api.item_status(created["id"], 1, "bar") == "failed", what="the bar item failed"
    )
    bar = pages.open("/screen/bar")
    alert = bar.locator(".printer-banner")
    expect(alert).to_contain_text("Bar printer: offline", timeout=10_000)
    # The board (a viewer's screen) shows the fault but offers no button; the station does.
    expect(board.locator(".printer-banner")).to_contain_text("Bar printer: offline")
    expect(board.locator(".printer-retry")).to_have_count(0)
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "online"}) is not None
    started = time.monotonic()
    bar.locator(".printer-retry").click()
    jobs = wait_for(lambda: read_log(bar_printer["log"]), timeout=10, what="the ticket printed")
    assert time.monotonic() - started < 10
    assert "1 x Pilsner" in jobs[0].text
    expect(alert).to_be_hidden(timeout=10_000)
    assert read_log(bar_printer["log"]) == jobs  # printed once


def test_a_ticket_the_station_shows_stays_new_when_its_print_fails(
    api: Api, pages: Pages, bar_printer: dict[str, Any]
) -> None:
    # The bar's screen acknowledged the ticket (`delivered`: the cook has it) before its print
    # failed: it stays `delivered` (no `delivered -> failed` in DESIGN's table) and its card reads
    # "new", not "print failed"; the banner tells the printer's trouble, and the ticket waits in
    # the queue and prints once the printer is back.
    # The printer hangs, so the spooler's round waits on it while the receipt lands.
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "hang"}) is not None
    bar = pages.open("/screen/bar")
    created = api.post_order(order("s", item(1, "Pilsner", group="Drinks")))
    wait_for(
        lambda: api.item_status(created["id"], 1, "bar") == "delivered",
        what="the bar screen's receipt",
    )
    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "offline"}) is not None
    alert = bar.locator(".printer-banner")
    expect(alert).to_contain_text("Bar printer: connection lost")
    wait_for(
        lambda: api.request("GET", "/api/v1/printers")["items"][0]["queued"] == 1,
        what="the ticket waiting in the bar's queue",
    )
    card = bar.locator(f"article.card[data-id='{created['id']}']")
    expect(card).to_have_attribute("data-status", "delivered")
    expect(card.locator(".state")).to_have_text("new", use_inner_text=True, ignore_case=True)

    assert _control(bar_printer["control"], "POST", "/mode", {"mode": "online"}) is not None
    bar.locator(".printer-retry").click()
    jobs = wait_for(lambda: read_log(bar_printer["log"]), timeout=10, what="the ticket printed")
    assert "1 x Pilsner" in jobs[0].text
    assert "REPRINT" not in jobs[0].text  # no byte of it had gone out
    expect(alert).to_be_hidden()
    assert api.item_status(created["id"], 1, "bar") == "delivered"
    expect(card).to_have_attribute("data-status", "delivered")
    expect(card.locator(".state")).to_have_text("new", use_inner_text=True, ignore_case=True)
