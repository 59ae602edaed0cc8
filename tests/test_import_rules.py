"""Import rules that keep the layout honest.

The fakes share no code with what they test: no simulator imports kds.sources or
kds.states. A simulator that reused the adapter's signing, query parsing or kds's own
transition table would agree with a bug in them, and the tests against it could never fail.

Sources are thin glue from a POS to the service core: no module under kds/sources/
imports the store, the inbox or the outbox. They get what they need injected
(`kds.sources.base.SourceContext`, typed by the protocols there).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KDS = Path(__file__).resolve().parent.parent / "kds"
SIMULATORS = KDS / "simulators"
FORBIDDEN = ("kds.sources", "kds.states")
SOURCES = KDS / "sources"
#: What a source must not import: it is handed the service core and the outbox by the daemon.
SOURCES_FORBIDDEN = ("kds.store", "kds.outbox", "kds.inbox")


def _imports(path: Path, root: Path = KDS.parent) -> list[str]:
    """Absolute names of every module `path` (under `root`) imports, relative imports resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize(
    "path", sorted(SIMULATORS.rglob("*.py")), ids=lambda p: str(p.relative_to(SIMULATORS))
)
def test_simulator_imports_nothing_from_the_adapters_or_the_state_machine(path: Path) -> None:
    bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}"


def _matches(name: str, forbidden: tuple[str, ...]) -> bool:
    # "kds.store" also forbids a package split into kds.store_sqlite / kds.store.sqlite.
    return any(name == f or name.startswith((f + ".", f + "_")) for f in forbidden)


@pytest.mark.parametrize(
    "path", sorted(SOURCES.rglob("*.py")), ids=lambda p: str(p.relative_to(SOURCES))
)
def test_source_imports_neither_the_store_nor_the_outbox(path: Path) -> None:
    bad = [n for n in _imports(path) if _matches(n, SOURCES_FORBIDDEN)]
    assert not bad, f"{path.relative_to(SOURCES)} imports {bad}"


def test_the_source_rule_catches_a_store_import(tmp_path: Path) -> None:
    # The checker itself: relative imports of the outbox and the store from a POS package are caught.
    module = tmp_path / "kds" / "sources" / "portos" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ...outbox import OutboxEntry\nfrom ... import store\n")
    bad = [n for n in _imports(module, root=tmp_path) if _matches(n, SOURCES_FORBIDDEN)]
    assert "kds.outbox" in bad and "kds.store" in bad
