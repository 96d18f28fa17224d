"""``triotok index rebuild``: rebuild the search read models from the write tables.

::

    $ triotok index rebuild --store postgresql://... --type product --workers 2
    rebuild 4: product of every tenant, 2 workers, batches of 500
    [############............]  52.0%  5,200/10,000 rows  4,100 rows/s  ETA 1s
    rebuild 4 done: 10,000 rows in 2.4s

It opens the store itself (migrating it if needed) and works beside running
servers: their projections keep applying live events meanwhile, and a
rebuild never reverts them (see ``triotok.modules.search._rebuild``). The
progress bar is redrawn on a terminal and printed about once a second
otherwise. Stopped (Ctrl-C, or killed), the same command resumes the
rebuild from its last committed batch.

Exit codes: 0 done; 1 failed (store unreachable, a rebuild of the same scope
running elsewhere); 2 a usage or configuration problem; 130 interrupted.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ("main",)


class _Printer:
    """Draws the progress line: redrawn in place on a terminal, else once a second."""

    def __init__(self, out: TextIO, *, interval: float = 1.0) -> None:
        self._out = out
        self._tty = bool(getattr(out, "isatty", lambda: False)())
        self._interval = interval
        self._last = 0.0
        self._drawn = False

    def progress(self, line: str, *, final: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            self._out.write("\r\x1b[2K" + line + ("\n" if final else ""))
            self._drawn = not final
        elif final or now - self._last >= self._interval:
            self._out.write(line + "\n")
            self._last = now
        self._out.flush()

    def say(self, line: str) -> None:
        if self._drawn:
            self._out.write("\n")
            self._drawn = False
        self._out.write(line + "\n")
        self._out.flush()


def main(args: Any, *, out: TextIO | None = None) -> int:
    """``triotok index rebuild`` (``args`` from the ``cli`` parser)."""
    import os

    from ._exceptions import InvalidConfig, InvalidInput
    from .config import load_settings

    out = out or sys.stderr
    try:
        settings = load_settings(
            config_file=args.config, env=os.environ, flags={"store_url": args.store}
        )
        from .modules.search import KINDS, RebuildOptions

        options = RebuildOptions(
            tenant_id=args.tenant,
            types=KINDS if args.type is None else (args.type,),
            workers=args.workers,
            batch_size=args.batch_size,
            pause=args.pause,
        )
    except (InvalidConfig, InvalidInput) as exc:
        print(f"triotok index rebuild: {exc}", file=out)
        return 2
    import trio

    try:
        return trio.run(_rebuild, settings, options, _Printer(out))
    except KeyboardInterrupt:
        print("\ntriotok index rebuild: interrupted; run it again to resume", file=out)
        return 130


async def _rebuild(settings: Any, options: Any, printer: _Printer) -> int:
    from ._exceptions import StoreError
    from .app import MODULES, module_settings, schemas_of
    from .modules.search import (
        Projector,
        Rebuilder,
        RebuildProgress,
        RebuildRunning,
        SearchSettings,
        describe_progress,
    )
    from .store import open_store

    search = SearchSettings.from_mapping(module_settings(settings)["search"])
    started = time.monotonic()
    try:
        async with open_store(settings.store_url, schemas=schemas_of(MODULES)) as store:

            def on_batch(progress: RebuildProgress) -> None:
                printer.progress(describe_progress(progress))

            rebuilder = Rebuilder(
                store, Projector(store.backend, search.configs), on_batch=on_batch
            )
            rebuild_id = await rebuilder.start(options)
            first = await rebuilder.progress(rebuild_id)
            scope = "every tenant" if options.tenant_id is None else f"tenant {options.tenant_id}"
            resumed = f", resumed at {first.rows_done:,} rows" if first.rows_done else ""
            printer.say(
                f"rebuild {rebuild_id}: {' and '.join(options.types)} of {scope},"
                f" {options.workers} worker{'s' if options.workers > 1 else ''},"
                f" batches of {options.batch_size}{resumed}"
            )
            final = await rebuilder.run(options, rebuild_id)
            printer.progress(describe_progress(final), final=True)
    except RebuildRunning as exc:
        printer.say(f"triotok index rebuild: {exc}; wait for it, or stop it first")
        return 1
    except StoreError as exc:
        printer.say(f"triotok index rebuild: the store failed: {exc}")
        return 1
    elapsed = time.monotonic() - started
    printer.say(f"rebuild {rebuild_id} done: {final.rows_done:,} rows in {elapsed:.1f}s")
    return 0
