"""Shared pieces of the benchmarks: timing, percentiles, the result table, JSON.

Every figure a benchmark reports is measured in the same run as its baseline,
and budgets are checked as ratios or absolute figures printed beside them.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Row:
    """One measured figure, optionally compared with a baseline row."""

    name: str
    value: float
    unit: str
    baseline: str | None = None  # name of the row this one is compared with
    ratio: float | None = None
    budget: str | None = None  # human text, e.g. ">= 1,000,000 msg/s"
    ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """All rows of one benchmark module."""

    title: str
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def get(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def compare(self, name: str, baseline: str, *, higher_is_better: bool = True) -> float:
        """Set ``name``'s ratio against ``baseline`` (> 1 means better) and return it."""
        row, base = self.get(name), self.get(baseline)
        ratio = row.value / base.value if higher_is_better else base.value / row.value
        row.baseline, row.ratio = baseline, ratio
        return ratio

    def print_table(self) -> None:
        print(f"\n== {self.title} ==")
        header = f"{'benchmark':<44} {'value':>14} {'unit':<10} {'vs':<26} {'ratio':>7}  budget"
        print(header)
        print("-" * len(header))
        for r in self.rows:
            ratio = f"{r.ratio:6.2f}x" if r.ratio is not None else ""
            verdict = "" if r.ok is None else (" OK" if r.ok else " MISSED")
            budget = f"{r.budget or ''}{verdict}"
            print(
                f"{r.name:<44} {_fmt(r.value):>14} {r.unit:<10} {r.baseline or '':<26} "
                f"{ratio:>7}  {budget}"
            )
        sys.stdout.flush()


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:,.2f}"
    return f"{v:.4g}"


def percentiles(samples: Iterable[float], *qs: float) -> list[float]:
    arr = np.fromiter(samples, dtype=float)
    if arr.size == 0:
        return [float("nan")] * len(qs)
    return [float(x) for x in np.percentile(arr, qs)]


def progress(msg: str) -> None:
    """Long work shows progress: one line per step on stderr."""
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def best_of(n: int, fn: Any) -> float:
    """Run ``fn() -> rate`` n times and keep the best (least disturbed) figure."""
    return max(fn() for _ in range(n))


def write_json(path: Path, reports: dict[str, Report]) -> None:
    payload = {
        "machine": {"python": sys.version, "platform": platform.platform()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reports": {k: asdict(v) for k, v in reports.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
