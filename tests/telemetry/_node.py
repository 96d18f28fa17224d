"""A TrioToK node process for the two-node trace test: the whole application, search included.

Run as ``python tests/telemetry/_node.py``; the settings come from ``TRIOTOK_*``
variables. Prints ``ready <port>`` once serving and stops cleanly on SIGTERM
(flushing its spans).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from triotok.app import MODULES, open_application
from triotok.config import load_settings


async def main() -> None:
    settings = load_settings(env=os.environ)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_application(settings, modules=MODULES) as app:
            print(f"ready {app.port}", flush=True)
            async for _ in signals:
                break


if __name__ == "__main__":
    trio.run(main)
