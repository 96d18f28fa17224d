"""The benchmarks' own assumptions about the code hold (they run outside the suite).

``bench/degrade.py`` measures the service-mode gate by re-executing the
request pipeline without the lines between two markers; a refactoring that
moves them must fail here, not in a benchmark run days later.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bench
from bench import degrade

import triotok.http._app as pipeline


def test_the_gate_markers_bracket_the_gate_in_the_pipeline() -> None:
    source = inspect.getsource(pipeline)
    start = source.index(degrade._GATE_START)
    end = source.index(degrade._GATE_END, start)
    removed = source[start:end]
    assert "board.refusal(" in removed
    assert removed.count("\n") < 8  # the gate alone, nothing else of the pipeline


def test_every_benchmark_module_has_a_main() -> None:
    names = [m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")]
    assert "degrade" in names
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        assert callable(getattr(module, "main", None)), name
