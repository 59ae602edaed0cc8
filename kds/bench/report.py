"""The bench's figures, their targets, and the table / JSON they are printed as."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured figure beside its baseline and target."""

    key: str
    name: str
    unit: str
    value: float
    baseline: float | None = None
    target: str = ""
    check: Callable[[Figure], bool] | None = field(default=None, repr=False)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """kds ÷ baseline (a rate: higher is better; a time: lower is better)."""
        if (
            self.baseline is None
            or not self.baseline
            or math.isnan(self.baseline)
            or math.isnan(self.value)
        ):
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        """Whether the target is met (None: no target)."""
        if self.check is None:
            return None
        if math.isnan(self.value):
            return False
        return bool(self.check(self))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "value": _num(self.value),
            "baseline": _num(self.baseline),
            "ratio": _num(self.ratio),
            "target": self.target or None,
            "passed": self.passed,
            "note": self.note or None,
        }


def _num(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 3)


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Report:
    """Every figure of one run and how the run was set up."""

    figures: list[Figure] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    @property
    def passed(self) -> bool:
        """Every target met and nothing went wrong."""
        return not self.errors and all(f.passed is not False for f in self.figures)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "setup": self.setup,
            "figures": [f.to_json() for f in self.figures],
            "errors": self.errors,
        }

    def json(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def table(self) -> str:
        """A Markdown table: figure, kds, baseline, ratio, target, pass/fail."""
        rows = [("figure", "kds", "baseline", "ratio", "target", "result")]
        for f in self.figures:
            ratio = f.ratio
            result = {True: "pass", False: "FAIL", None: ""}[f.passed]
            rows.append(
                (
                    f"{f.name} ({f.unit})",
                    _fmt(f.value),
                    _fmt(f.baseline),
                    "–" if ratio is None else f"{ratio:.2f}×",
                    f.target or "–",
                    result,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for n, row in enumerate(rows):
            lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
            if n == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        notes = [f"- {f.name}: {f.note}" for f in self.figures if f.note]
        out = "\n".join(lines)
        if notes:
            out += "\n\n" + "\n".join(notes)
        if self.errors:
            out += "\n\nerrors:\n" + "\n".join(f"- {e}" for e in self.errors)
        load = self.setup.get("loadBefore")
        if load is not None:
            fsync = self.setup.get("fsyncMs") or {}
            out += f"\n\nmachine: {self.setup.get('cpus')} CPUs, load average {load} before the run"
            if fsync:
                out += f", fsync p50 {fsync['p50']} ms / p99 {fsync['p99']} ms"
            if load >= 0.5:
                out += " (other work shared the CPUs: figures are worse than on an idle machine)"
        out += f"\nresult: {'all targets met' if self.passed else 'some targets missed'}"
        return out
