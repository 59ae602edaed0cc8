"""The systemd unit verifies, and the daemon speaks the notify protocol: READY=1 then watchdog pings."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .util import ROOT, base_config, free_port, write_config


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_verifies(tmp_path: Path) -> None:
    # The unit as shipped, with ExecStart pointed at this install's kds (verify checks it exists).
    kds = Path(sys.executable).parent / "kds"
    unit = (
        (ROOT / "systemd" / "kds.service").read_text().replace("/opt/kds/.venv/bin/kds", str(kds))
    )
    path = tmp_path / "kds.service"
    path.write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for option in (
        "Type=notify",
        "WatchdogSec=",
        "StateDirectory=kds",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "User=kds",
    ):
        assert option in unit


def test_ready_only_when_serving_then_watchdog_pings(tmp_path: Path) -> None:
    # A fake notify socket stands in for systemd: READY=1 must come when /readyz already answers 200,
    # and WATCHDOG=1 keeps coming from the event loop.
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    port = free_port()
    config = write_config(tmp_path / "c.toml", base_config(tmp_path))
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "run",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        message = sock.recv(4096).decode()
        assert message == "READY=1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
        pings = [sock.recv(4096).decode() for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3
        proc.terminate()
        assert proc.wait(15) == 0
        remaining = []
        sock.settimeout(2)
        while True:
            try:
                remaining.append(sock.recv(4096).decode())
            except TimeoutError:
                break
            if remaining[-1] == "STOPPING=1":
                break
        assert "STOPPING=1" in remaining
    finally:
        proc.kill()
        sock.close()
