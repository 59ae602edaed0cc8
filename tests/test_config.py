"""config.toml: the repo's file runs as is, and every error names the key and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kds.config import ConfigError, load_settings, parse_duration, settings_from_dict

from .util import ROOT, base_config


def test_repo_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.toml")
    assert [e.name for e in settings.endpoints] == ["grill", "cold", "bar"]
    assert settings.database.synchronous == "FULL"
    assert [c.type for c in settings.source_configs] == ["native"]
    bar = settings.endpoint("bar")
    assert bar is not None and bar.printer is not None and bar.display


@pytest.mark.parametrize("text,seconds", [("250ms", 0.25), ("1s", 1), ("5m", 300), ("24h", 86400), ("7d", 604800), (3, 3)])
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("change,message", [
    (lambda c: c["endpoints"][0].update(timers={"warn_after": "soon"}), "endpoints.0.timers.warn_after"),
    (lambda c: c["endpoints"].append({"name": "grill"}), "endpoint names must be unique"),
    (lambda c: c["endpoints"][0].update(name="bad name!"), "endpoints.0.name"),
    (lambda c: c["endpoints"][0].update(colour="red"), "endpoints.0.colour"),
    (lambda c: c["routing"].update(default_endpoint="pizza"), "routing.default_endpoint 'pizza'"),
    (lambda c: c["routing"]["rules"].append({"product_group": "X", "endpoint": "pizza"}), "unknown endpoint(s): pizza"),
    (lambda c: c["routing"]["rules"].append({"endpoint": "bar"}), "product_code, product_group or name_pattern"),
    (lambda c: c["sources"].append({"type": "carrier-pigeon"}), "sources.1: unknown source type 'carrier-pigeon'"),
    (lambda c: c["sources"].append({"type": "portos"}), "sources.1.base_url"),
    (lambda c: c.update(database={"synchronous": "OFF"}), "database.synchronous"),
    (lambda c: c.update(security={"access": "everyone"}), "security.access"),
    (lambda c: c.update(endpoints=[]), "endpoints"),
    (lambda c: c["endpoints"][0].update(display=False), "needs display = true or a printer"),
])
def test_errors_name_the_key(tmp_path: Path, change: Any, message: str) -> None:
    config = base_config(tmp_path)
    change(config)
    with pytest.raises(ConfigError) as err:
        settings_from_dict(config)
    assert message in str(err.value)


def test_endpoint_defaults(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["endpoints"].append({"name": "drinks", "printer": {"address": "127.0.0.1:9100"}})
    drinks = settings_from_dict(config).endpoint("drinks")
    assert drinks is not None and drinks.display is False and drinks.auto_process is True and drinks.kind == "printer"


def test_check_config_cli(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "kds.cli", "check-config", "--config", str(ROOT / "config.toml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "endpoint bar: screen+printer" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[endpoints]]\nname = "grill"\ntimers = { warn_after = "later" }\n')
    result = subprocess.run([sys.executable, "-m", "kds.cli", "check-config", "--config", str(bad)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "endpoints.0.timers.warn_after" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nlisten=")
    result = subprocess.run([sys.executable, "-m", "kds.cli", "check-config", "--config", str(broken)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_run_rejects_a_bad_listen_flag(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "kds.cli", "run", "--config", str(ROOT / "config.toml"),
                             "--listen", "nowhere"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr
