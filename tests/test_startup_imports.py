"""A daemon imports only what its configuration uses: start-up time and memory (issue 19).

`kds run` on SQLite without printers must not load the PostgreSQL driver, python-escpos and
Pillow, or rich (structlog's console tracebacks): each costs start-up time and resident
memory on every restart, for nothing. And its start (imports, config, the loaded orders)
allocates what lives until exit: a full cyclic collection meanwhile walks it all for nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict

from .util import ROOT, base_config, free_port, order_body, write_config

#: Runs `kds run` in this process (so its modules can be read), and once /readyz answers
#: writes the names of the loaded modules and the cyclic GC's state to a file and stops
#: the daemon with SIGTERM.
_PROBE = """
import gc
full_before = gc.get_stats()[2]["collections"]  # before kds is imported at all

import json, os, signal, sys, threading, time, urllib.request

connects = []  # each SQLite connection opened: its thread, and whether kds.app was imported yet


def audit(event, args):
    if event == "sqlite3.connect":
        name = threading.current_thread().name
        connects.append({"thread": name, "appImported": "kds.app" in sys.modules})


sys.addaudithook(audit)
from kds.cli import main

url, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]


def probe():
    deadline, ready = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    ready = json.load(response)
                    break
        except OSError:
            pass
        threading.Event().wait(0.05)  # poll interval while the daemon starts
    model = sys.modules.get("kds.model")
    built = [
        name
        for name, c in vars(model).items()
        if isinstance(c, type) and c.__module__ == "kds.model" and getattr(c, "__pydantic_complete__", False)
    ] if model else []
    connector = sys.modules.get("aiohttp.connector")
    contexts = (connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED) if connector else ()
    state = {
        "clientCaCerts": [c.cert_store_stats()["x509_ca"] for c in contexts],
        "builtModels": sorted(built),
        "ready": ready,
        "modules": sorted(sys.modules),
        "fullCollections": gc.get_stats()[2]["collections"] - full_before,
        "gcEnabled": gc.isenabled(),
        "connects": connects,
    }
    with open(out, "w") as f:
        json.dump(state, f)
    os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=probe, daemon=True).start()
sys.exit(main(argv))
"""

#: Loaded by a running daemon only when its configuration needs them.
HEAVY = ("asyncpg", "escpos", "PIL", "rich")
#: kds modules a daemon imports only when a request needs them.
ON_DEMAND = ("kds.api.openapi", "kds.api.query")


def _running_kds(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """What the probe saw in a `kds run` process once it was ready."""
    port = free_port()
    path = write_config(tmp_path / "config.toml", config)
    out = tmp_path / "modules.json"
    argv = ["run", "--config", str(path), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, f"http://127.0.0.1:{port}", str(out), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    state: dict[str, Any] = json.loads(out.read_text())
    return state


def _modules_of_running_kds(tmp_path: Path, config: dict[str, Any]) -> set[str]:
    return set(_running_kds(tmp_path, config)["modules"])


def _loaded(modules: set[str], package: str) -> bool:
    return package in modules or any(m.startswith(package + ".") for m in modules)


def test_sqlite_daemon_without_printers_loads_no_postgres_printing_or_rich(
    tmp_path: Path,
) -> None:
    modules = _modules_of_running_kds(tmp_path, base_config(tmp_path))
    assert "kds.app" in modules  # the probe saw a running daemon
    assert [p for p in HEAVY if _loaded(modules, p)] == []
    assert not _loaded(modules, "kds.cluster")
    assert "kds.store.postgres" not in modules
    assert [m for m in ON_DEMAND if m in modules] == []
    assert not _loaded(modules, "kds.printing")  # not even the printer's config model


def test_daemon_loads_only_the_source_packages_its_config_names(tmp_path: Path) -> None:
    config = base_config(tmp_path)  # [[sources]]: native only
    assert [s["type"] for s in config["sources"]] == ["native"]
    modules = _modules_of_running_kds(tmp_path, config)
    unused = ("kds.sources.portos", "kds.sources.ready2order", "kds.sources.cheques")
    assert [p for p in unused if _loaded(modules, p)] == []


def test_import_kds_app_loads_no_postgres_printing_or_rich() -> None:
    code = "import json, sys, kds.app; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(json.loads(proc.stdout))
    assert [p for p in HEAVY if _loaded(modules, p)] == []


def test_daemon_start_runs_no_full_collection_and_is_ready_with_the_gc_on(tmp_path: Path) -> None:
    state = _running_kds(tmp_path, base_config(tmp_path))
    assert state["fullCollections"] == 0  # from the first import to /readyz 200
    assert state["gcEnabled"]  # turned back on once ready (kds.app._tune_gc)


async def _running_kds_with_one_order(tmp_path: Path, aiohttp_client: Any) -> dict[str, Any]:
    """`_running_kds` on a database holding one order, posted through the API beforehand."""
    config = base_config(tmp_path)
    client = await aiohttp_client(Daemon(settings_from_dict(config)).app)
    response = await client.post("/api/v1/orders", json=order_body("a"))
    assert response.status == 201
    await client.close()
    return await asyncio.to_thread(_running_kds, tmp_path, config)


async def test_daemon_builds_no_order_model_before_ready(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Loading orders sets their fields without validation and nothing is serialized before
    # /readyz 200, so kds.model's validators and serializers are built on first use
    # (defer_build: ~45 ms of a start), not at import.
    state = await _running_kds_with_one_order(tmp_path, aiohttp_client)
    assert state["ready"]["components"]["service"]["orders"] == 1  # the order was loaded
    assert state["builtModels"] == []


async def test_kds_run_reads_its_orders_while_it_imports(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # SQLite builds each chunk of orders' text without the GIL: `kds run` starts reading the
    # orders of its database (one that needs no migration) on a thread of its own before it
    # imports aiohttp and the daemon, so on a second core the reading is done meanwhile.
    state = await _running_kds_with_one_order(tmp_path, aiohttp_client)
    assert state["ready"]["components"]["service"]["orders"] == 1
    first = state["connects"][0]
    assert first == {"thread": "kds-store-preload", "appImported": False}


def test_daemon_whose_sources_make_no_requests_loads_no_ca_certificates(tmp_path: Path) -> None:
    # aiohttp's two default client SSL contexts load the system's CA bundle when it is
    # imported (~0.25 G instructions each); a daemon with the native source alone makes no
    # outgoing request, so they hold none until a client starts (kds.tls).
    state = _running_kds(tmp_path, base_config(tmp_path))
    assert state["clientCaCerts"] == [0, 0]


def test_a_pos_client_loads_the_trust_aiohttp_would_have_loaded() -> None:
    # In a process where kds imported aiohttp without loading CA certificates, a POS client
    # loads into every client context aiohttp made at import (found by type, not by aiohttp's
    # private names) exactly what aiohttp loads (from the environment as it is then), before
    # its first request.
    code = """
import asyncio, json, ssl, sys
from kds import tls
tls.import_aiohttp()
from kds.sources.http import PosClient
contexts = [
    value
    for name, module in list(sys.modules.items())
    if name.split(".")[0] == "aiohttp"
    for value in vars(module).values()
    if isinstance(value, ssl.SSLContext)
]
before = [c.cert_store_stats()["x509_ca"] for c in contexts]
async def start():
    client = PosClient(timeout=1)
    await client.start()
    await client.stop()
asyncio.run(start())
reference = ssl.create_default_context()
print(json.dumps({
    "before": before,
    "after": [c.get_ca_certs() == reference.get_ca_certs() for c in contexts],
    "count": [c.cert_store_stats()["x509_ca"] for c in contexts],
}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout)
    assert seen["before"] and set(seen["before"]) == {0}
    assert set(seen["after"]) == {True} and min(seen["count"]) > 0


def test_outgoing_requests_of_a_daemon_go_through_the_pos_client() -> None:
    # `load_client_trust` runs where a daemon's client session opens (PosClient.start); a
    # session opened elsewhere in a daemon would verify TLS against no CA certificates.
    # Commands that run no daemon (bench, simulators, demo, ready2order setup) import aiohttp
    # themselves, with its trust loaded.
    own = {"kds/sources/http.py"}
    commands = ("kds/bench/", "kds/simulators/", "kds/demo.py", "kds/sources/ready2order/cli.py")
    opening = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "kds").rglob("*.py")
        if "ClientSession(" in path.read_text(encoding="utf-8")
    )
    assert [p for p in opening if p not in own and not p.startswith(commands)] == []
