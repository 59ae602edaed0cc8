"""POS problems reach the expo and the cashier board as a banner of plain text (issue 14, items 2 and 4)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.util import ROOT, free_port

from .conftest import Pages, expect, wait_for

TOKEN = "browser-portos-token"
EVIL = '<img src=x onerror="window.pwned=1">'


@pytest.fixture(scope="module")
def portos_sim() -> Iterator[str]:
    """`kds portos-sim` in a subprocess; yields its root URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "portos-sim",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--no-demo-catalog",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{root}/_sim/state", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(up, timeout=15, what="the PORTOS simulator")
        yield root
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def kds_config(kds_config: dict[str, Any], portos_sim: str) -> dict[str, Any]:
    kds_config["sources"] = [
        {"type": "native"},
        {
            "type": "portos",
            "base_url": f"{portos_sim}/api",
            "token": TOKEN,
            "poll_interval": "100ms",
        },
    ]
    return kds_config


def put_order(root: str, order: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{root}/_sim/orders",
        data=json.dumps(order).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_an_unreadable_portos_order_shows_on_expo_and_board_as_text(
    pages: Pages, portos_sim: str
) -> None:
    # Which POS, which order, why — and the POS's text is shown as text, never run as HTML.
    expo = pages.open("/expo")
    board = pages.open("/board")
    station = pages.open("/screen/grill")
    expect(expo.locator(".source-alerts")).to_be_hidden()
    endpoints = [{"name": "grill", "orderItemStatus": "created", "statusChanges": []}]
    raw = put_order(
        portos_sim,
        {
            "id": "odd-1",
            "number": 77,
            "items": [
                {
                    "id": 1,
                    "plu": {"name": EVIL, "code": 9},
                    "quantity": {"amount": EVIL},
                    "endpoints": endpoints,
                }
            ],
        },
    )
    for page in (expo, board):
        banner = page.locator(".source-alerts")
        expect(banner).to_be_visible(timeout=10_000)
        expect(banner).to_contain_text("portos")
        expect(banner).to_contain_text(f"#77 ({raw['id']})")
        expect(banner).to_contain_text("quantity")
        assert page.locator(".source-alerts img").count() == 0
        assert page.evaluate("window.pwned") is None
    expect(station.locator(".source-alerts")).to_have_count(
        0
    )  # kitchen stations are not distracted
    # A screen opened later learns it from the snapshot.
    late = pages.open("/board")
    expect(late.locator(".source-alerts")).to_contain_text(f"#77 ({raw['id']})")
