"""Run benchmarks: ``python -m bench NAME [--json PATH] [--quick]``.

Each benchmark is a module ``bench/<name>.py`` exposing ``main(args) -> Report``.
``python -m bench all`` runs every one of them in turn.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import bench


def _names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=[*_names(), "all"])
    parser.add_argument("--json", type=Path, help="write the results as JSON to this path")
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke test)")
    args = parser.parse_args(argv)
    names = _names() if args.name == "all" else [args.name]
    reports = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        report = module.main(args)
        report.print_table()
        reports[name] = report
    if args.json:
        from bench._harness import write_json

        write_json(args.json, reports)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
