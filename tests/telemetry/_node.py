"""A TrioToK node process for the multi-node tests (``tests/appnode.py`` starts it).

Run as ``python tests/telemetry/_node.py [--without NAME[,NAME]]``: the whole
application, or without the modules named (``--without search``: a node
that serves the API but keeps no read model). The settings come from
``TRIOTOK_*`` variables. Prints ``ready <port>`` once serving and stops
cleanly on SIGTERM (flushing its spans).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from triotok.app import MODULES, open_application
from triotok.config import load_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--without",
        default="",
        metavar="NAME[,NAME]",
        help="modules of triotok.app.MODULES not to run",
    )
    args = parser.parse_args(argv)
    args.without = {name for name in args.without.split(",") if name}
    unknown = args.without - {m.name for m in MODULES}
    if unknown:
        parser.error(f"--without: no module named {', '.join(sorted(unknown))}")
    return args


async def main(without: set[str]) -> None:
    settings = load_settings(env=os.environ)
    modules = tuple(m for m in MODULES if m.name not in without)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_application(settings, modules=modules) as app:
            print(f"ready {app.port}", flush=True)
            async for _ in signals:
                break


if __name__ == "__main__":
    trio.run(main, _parse(sys.argv[1:]).without)
