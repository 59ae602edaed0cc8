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
    assert [c.type for c in settings.sources] == ["native"]
    bar = settings.endpoint("bar")
    assert bar is not None and bar.printer is not None and bar.display


@pytest.mark.parametrize(
    "text,seconds",
    [("250ms", 0.25), ("1s", 1), ("5m", 300), ("24h", 86400), ("7d", 604800), (3, 3)],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda c: c["endpoints"][0].update(timers={"warn_after": "soon"}),
            "endpoints.grill.timers.warn_after",
        ),
        (lambda c: c["endpoints"].append({"name": "grill"}), "endpoint names must be unique"),
        (lambda c: c["endpoints"][0].update(name="bad name!"), "endpoints[0].name"),
        (lambda c: c["endpoints"][0].update(colour="red"), "endpoints.grill: unknown key 'colour'"),
        (
            lambda c: c["routing"].update(default_endpoint="pizza"),
            "routing.default_endpoint 'pizza'",
        ),
        (
            lambda c: c["routing"]["rules"].append({"product_group": "X", "endpoint": "pizza"}),
            "unknown endpoint(s): pizza",
        ),
        (
            lambda c: c["routing"]["rules"].append({"endpoint": "bar"}),
            "product_code, product_group or name_pattern",
        ),
        (
            lambda c: c["sources"].append({"type": "carrier-pigeon"}),
            "sources.carrier-pigeon: unknown source type 'carrier-pigeon'",
        ),
        (lambda c: c["sources"].append({"type": "portos"}), "sources.portos.base_url: required"),
        (lambda c: c.update(database={"synchronous": "OFF"}), "database.synchronous"),
        (lambda c: c.update(security={"access": "everyone"}), "security.access"),
        (lambda c: c.update(endpoints=[]), "endpoints"),
        (lambda c: c["endpoints"][0].update(display=False), "needs display = true or a printer"),
        (lambda c: c.update(server={"listen": "abc"}), "server.listen"),
        (lambda c: c.update(server={"listen": "1.2.3.4:99999"}), "server.listen"),
        (lambda c: c.update(server={"listen": "host:"}), "server.listen"),
        (lambda c: c.update(server={"listen": ":8080x"}), "server.listen"),
        # A section is named by its endpoint (or source), not by its position in the file.
        (
            lambda c: c["endpoints"][1].update(dispaly=True),
            "endpoints.cold: unknown key 'dispaly' — did you mean 'display'?",
        ),
        (
            lambda c: c["endpoints"][0].update(timers={"late_afer": "9m"}),
            "endpoints.grill.timers: unknown key 'late_afer' — did you mean 'late_after'?",
        ),
        (
            lambda c: c["endpoints"][2].update(printer={"adress": "10.0.0.9"}),
            "endpoints.bar.printer: unknown key 'adress' — did you mean 'address'?",
        ),
        (
            lambda c: c.update(ui={"pickup_type": ["takeaway"]}),
            "ui: unknown key 'pickup_type' — did you mean 'pickup_types'?",
        ),
        (lambda c: c.update(databse={}), "unknown key 'databse' — did you mean 'database'?"),
        (
            lambda c: c["sources"].append(
                {"type": "portos", "base_url": "http://pos", "token": "t", "poll_intervall": "1s"}
            ),
            "sources.portos: unknown key 'poll_intervall' — did you mean 'poll_interval'?",
        ),
        # Timers that cannot work, and bump-bar keys mapped to actions that do not exist.
        (
            lambda c: c["endpoints"][0].update(timers={"warn_after": "10m", "late_after": "5m"}),
            "endpoints.grill.timers: late_after (5m) must be later than warn_after (10m)",
        ),
        (
            lambda c: c["endpoints"][0].update(timers={"warn_after": "5m", "late_after": 300}),
            "endpoints.grill.timers: late_after (5m) must be later than warn_after (5m)",
        ),
        (
            lambda c: c["endpoints"][0].update(keys={"F1": "bumpp"}),
            "endpoints.grill.keys.F1: unknown action 'bumpp' — did you mean 'bump'?",
        ),
        (
            lambda c: c["endpoints"][0].update(keys={"F2": "explode"}),
            "endpoints.grill.keys.F2: unknown action 'explode' (known: accept,",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, change: Any, message: str) -> None:
    config = base_config(tmp_path)
    change(config)
    with pytest.raises(ConfigError) as err:
        settings_from_dict(config)
    assert message in str(err.value)


def test_sources_are_typed_by_their_type(tmp_path: Path) -> None:
    # [[sources]] entries come out of validation as their package's Config, chosen by `type`.
    from kds.sources.cheques.config import Config as ChequesConfig
    from kds.sources.portos.config import Config as PortosConfig

    config = base_config(tmp_path)
    config["sources"] = [
        {"type": "native"},
        {"type": "portos", "base_url": "http://pos/", "token": "t", "poll_interval": "2s"},
        {"type": "cheques", "name": "till", "url": "http://till/v1"},
    ]
    native, portos, cheques = settings_from_dict(config).sources
    assert native.type == "native"
    assert isinstance(portos, PortosConfig) and portos.poll_interval == 2.0
    assert portos.base_url == "http://pos"
    assert isinstance(cheques, ChequesConfig) and cheques.name == "till"


def test_source_errors_come_with_the_other_errors(tmp_path: Path) -> None:
    # One run of check-config names every bad key: a bad source does not wait for good endpoints.
    config = base_config(tmp_path)
    config["endpoints"][0].update(colour="red")
    config["sources"] = [{"type": "portos", "token": "t"}, {"name": "x"}]
    with pytest.raises(ConfigError) as err:
        settings_from_dict(config)
    lines = str(err.value).splitlines()
    assert "endpoints.grill: unknown key 'colour' (known:" in lines[0]
    assert "sources.portos.base_url: required, but missing" in lines
    assert "sources.x: `type` is required (cheques, native, portos, ready2order)" in lines


def test_key_actions_match_the_screens() -> None:
    # config.toml's key actions are checked against the list the screens' keyboard.js knows.
    import re

    from kds.config import KEY_ACTIONS

    source = (ROOT / "web" / "js" / "keyboard.js").read_text(encoding="utf-8")
    block = re.search(r"export const ACTIONS = new Set\(\[(.*?)\]\)", source, re.S)
    assert block is not None
    assert set(re.findall(r'"([A-Za-z0-9]+)"', block.group(1))) == set(KEY_ACTIONS)


def test_endpoint_defaults(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    config["endpoints"].append({"name": "drinks", "printer": {"address": "127.0.0.1:9100"}})
    drinks = settings_from_dict(config).endpoint("drinks")
    assert (
        drinks is not None
        and drinks.display is False
        and drinks.auto_process is True
        and drinks.kind == "printer"
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "kds.cli", "check-config", "--config", str(ROOT / "config.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0 and "endpoint bar: screen+printer" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[endpoints]]\nname = "grill"\ntimers = { warn_after = "later" }\n')
    result = subprocess.run(
        [sys.executable, "-m", "kds.cli", "check-config", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "endpoints.grill.timers.warn_after" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nlisten=")
    result = subprocess.run(
        [sys.executable, "-m", "kds.cli", "check-config", "--config", str(broken)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_check_config_names_a_bad_listen(tmp_path: Path) -> None:
    # A listen value `kds run` cannot bind is a check-config error naming the key, not "ok"
    # followed by a daemon that exits (a crash loop under systemd).
    bad = tmp_path / "listen.toml"
    bad.write_text('[server]\nlisten = "1.2.3.4:99999"\n[[endpoints]]\nname = "grill"\n')
    result = subprocess.run(
        [sys.executable, "-m", "kds.cli", "check-config", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "server.listen" in result.stderr, (
        result.stdout,
        result.stderr,
    )


def test_run_rejects_a_bad_listen_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "run",
            "--config",
            str(ROOT / "config.toml"),
            "--listen",
            "nowhere",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "HOST:PORT" in result.stderr
