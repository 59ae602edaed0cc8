"""A new operator's first minutes: a readable start in a terminal, one clear line when the port
is taken, and an unpaired screen that explains pairing instead of showing JSON."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.api.auth import hash_token

from .util import ROOT, base_config, free_port, write_config


def _read_until(fd: int, wanted: str, timeout: float) -> str:
    """Read a pty until `wanted` appeared (bounded by `timeout`); returns all that was read."""
    out = b""
    deadline = time.monotonic() + timeout
    while wanted.encode() not in out:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    config = base_config(tmp_path)
    config["logging"] = {"level": "info", "format": "auto"}
    return write_config(tmp_path / "config.toml", config)


@pytest.fixture
def terminal_kds(tmp_path: Path, config_path: Path) -> Iterator[tuple[int, int]]:
    """`kds run` with a terminal as its stdout and stderr: (pty fd, port)."""
    port = free_port()
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "run",
            "--config",
            str(config_path),
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            str(tmp_path / "kds.sqlite3"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(child)
    yield main, port
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    os.close(main)


def test_run_in_a_terminal_prints_the_screen_urls_and_how_to_pair(
    terminal_kds: tuple[int, int],
) -> None:
    # Started by hand in a terminal, kds says in plain words where the screens are and how a
    # screen on another machine is paired — not only JSON log lines.
    fd, port = terminal_kds
    text = _read_until(fd, "Ctrl-C", 30)
    assert "kds is running" in text, text
    for path in ("/screen/grill", "/screen/cold", "/screen/bar", "/expo", "/board", "/pickup"):
        assert f"http://127.0.0.1:{port}{path}" in text, text
    assert "kds token --role kitchen" in text and f":{port}/pair?token=" in text, text


def test_run_without_a_terminal_prints_no_banner(tmp_path: Path, config_path: Path) -> None:
    # Under systemd (no terminal) stdout stays free of the banner: the journal gets log lines only.
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "run",
            "--config",
            str(config_path),
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            str(tmp_path / "kds.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            b"kds.listening" not in (line := proc.stderr.readline()) and time.monotonic() < deadline
        ):  # type: ignore[union-attr]
            assert line, "kds exited"
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=15)
    assert b"kds is running" not in stdout


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        [
            "run",
            "--config",
            str(ROOT / "config.toml"),
            "--listen",
            "127.0.0.1:{port}",
            "--db",
            "{tmp}/kds.sqlite3",
        ],
        ["virtual-printer", "--port", "{port}"],
    ],
)
def test_a_port_in_use_is_one_clear_line(
    tmp_path: Path, taken_port: int, command: list[str]
) -> None:
    # The port is taken: one line naming the address and what to do, a non-zero exit, no traceback.
    args = [a.format(port=taken_port, tmp=tmp_path) for a in command]
    result = subprocess.run(
        [sys.executable, "-m", "kds.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kds:")]
    assert len(errors) == 1, result.stderr
    assert f"127.0.0.1:{taken_port}" in errors[0] and "already in use" in errors[0]


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    config = base_config(tmp_path)
    config["security"] = {
        "access": "tokens",
        "tokens": [
            {"name": "grill-screen", "role": "kitchen", "sha256": hash_token("kitchen-token")},
            {"name": "pickup-screen", "role": "viewer", "sha256": hash_token("viewer-token")},
        ],
    }
    return config


@pytest.mark.parametrize("path", ["/screen/grill", "/expo", "/board", "/pickup", "/"])
async def test_an_unpaired_screen_gets_a_page_that_explains_pairing(
    client: TestClient, path: str
) -> None:
    # A browser opening a screen without a token gets an HTML page (still 401) saying how to pair
    # this screen; the page loads nothing but kds's own stylesheet.
    response = await client.get(
        path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert response.status == 401
    assert response.content_type == "text/html"
    page = await response.text()
    assert "not paired" in page and "kds token --role" in page and "/pair?token=" in page
    assert f"next={path}" in page
    assert "<script" not in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_a_screen_paired_with_the_wrong_role_says_so(client: TestClient) -> None:
    # A pickup board's viewer token on a station screen: 403, and the page says which role it needs.
    response = await client.get(
        "/screen/grill", headers={"Accept": "text/html", "Authorization": "Bearer viewer-token"}
    )
    assert response.status == 403 and response.content_type == "text/html"
    assert "kitchen" in await response.text()


async def test_api_clients_still_get_json(client: TestClient) -> None:
    # Only browsers asking for a page get HTML: API calls (and page fetches asking for JSON) stay JSON.
    for path, accept in (
        ("/api/v1/orders", "text/html"),
        ("/screen/grill", "application/json"),
        ("/board", "*/*"),
    ):
        response = await client.get(path, headers={"Accept": accept})
        assert response.status == 401 and response.content_type == "application/json", path
        assert (await response.json())["error"] == "unauthorized"
