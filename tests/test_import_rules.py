"""The fakes share no code with what they test: no simulator imports kds.sources or kds.states.

A simulator that reused the adapter's signing, query parsing or kds's own transition
table would agree with a bug in them, and the tests against it could never fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIMULATORS = Path(__file__).resolve().parent.parent / "kds" / "simulators"
FORBIDDEN = ("kds.sources", "kds.states")


def _imports(path: Path) -> list[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SIMULATORS.parent.parent).with_suffix("").parts)
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
