"""The ``triotok`` command.

``triotok serve [--host H] [--port P] [--config FILE] [--store URL] [--workers N] [--demo]``
starts the application tree and serves HTTP until SIGINT/SIGTERM, then stops
gracefully (in-flight requests finish, children stop right to left); a
second signal cancels what is left. Configuration: defaults < ``--config``
TOML file < ``TRIOTOK_*`` environment variables < flags.

Heavy modules (quart, hypercorn, the store drivers) are imported only once a
server actually starts, so ``--help`` and configuration errors answer at once.

``triotok tree [--url U] [--key K] [--prefix P] [--depth N] [--state S] [--watch [SECONDS]]
[--no-color]`` shows the live tree of a running server (see ``_tree_command``).

``triotok index rebuild [--store URL] [--config FILE] [--tenant T] [--type product|content]
[--workers N] [--batch-size B] [--pause SECONDS]`` rebuilds the search read models from the
write tables, with a progress bar; it resumes where a stopped one left off (``_index_command``).

``triotok plugins list|enable|disable|restart [NAME]`` operates its plugins
(see ``_plugins_command``).

``triotok events status|replay --group G (--from-seq N | --since TIME)`` inspects
the L2 event stream and replays a consumer group (see ``_events_command``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings

__all__ = ("main",)

logger = logging.getLogger("triotok.cli")

_WORKER_ENV = "TRIOTOK_WORKER_INDEX"  # set by the parent for its worker processes only


# Help texts are for users: plain sentences, no markup, nothing about the code.
_DESCRIPTION = "TrioToK: a supervised actor platform for multi-tenant content and commerce."
_EPILOG = "Run 'triotok COMMAND --help' for the options of a command."

_SERVE_DESCRIPTION = """\
Start the application (its supervision tree and HTTP API) and serve until
Ctrl-C or SIGTERM. The first signal stops it gracefully: requests in flight
get graceful_timeout seconds to finish. A second one stops it at once."""

_SERVE_SETTINGS = """\
Each setting comes from its default, the TOML file given with --config, a
TRIOTOK_* environment variable or a flag; later ones win. Every setting, with
its environment variable, TOML key and default:
"""

_TREE_DESCRIPTION = """\
Show the live supervision tree of a running TrioToK server: one line per
actor with its state, mailbox, messages processed and failed, restarts,
circuit breakers and last error."""

_TREE_EPILOG = """\
The key must be an admin key of the operator tenant ('triotok serve --demo'
prints one). Prefer TRIOTOK_API_KEY to --key: other users of the machine can
see command-line arguments. Colours are shown on a terminal only, and never
with --no-color or when NO_COLOR is set.

Exit status: 0 done; 1 the tree could not be fetched (server unreachable, no
actor at --prefix, server error); 2 a usage or access problem (no key, key
refused, invalid filter or URL)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triotok", description=_DESCRIPTION, epilog=_EPILOG)
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )
    _add_serve_parser(commands)
    _add_tree_parser(commands)
    _add_index_parser(commands)
    from ._events_command import add_parser as add_events_parser
    from ._plugins_command import add_parser as add_plugins_parser

    add_plugins_parser(commands)
    add_events_parser(commands)
    return parser


def _add_serve_parser(commands: Any) -> None:
    from .config import FIELDS

    fields = {field.name: field for field in FIELDS}
    # Aligned for the usual names; a longer one is followed by one space.
    width = 26
    settings = "\n".join(
        f"  {field.env + ' ':<{width}}[{field.section}] {field.key} = {_toml(field.default)}\n"
        f"      {field.help}"
        for field in FIELDS
    )
    serve = commands.add_parser(
        "serve",
        help="run the application and serve its HTTP API",
        description=_SERVE_DESCRIPTION,
        epilog=f"{_SERVE_SETTINGS}\n{settings}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def flag(name: str, field: str, metavar: str, **options: Any) -> None:
        spec = fields[field]
        text = f"{spec.help}; default {spec.default}"
        serve.add_argument(name, metavar=metavar, help=text, **options)

    flag("--host", "host", "ADDRESS")
    flag("--port", "port", "PORT", type=int)
    serve.add_argument("--config", metavar="FILE", help="read settings from this TOML file")
    flag("--store", "store_url", "URL")
    flag("--workers", "workers", "N", type=int)
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="create a demo tenant and an operator tenant with an admin key each (once) "
        "and print the keys; not for production",
    )
    flag("--log-level", "log_level", "LEVEL")
    flag("--log-format", "log_format", "FORMAT")
    flag("--tracing", "tracing", "EXPORTER")
    flag("--metrics-port", "metrics_port", "PORT", type=int)
    flag("--events", "events_url", "URL")


def _toml(value: object) -> str:
    """``value`` as TOML writes it (the settings list reads like lines of the file)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _add_tree_parser(commands: Any) -> None:
    tree = commands.add_parser(
        "tree",
        help="show the live supervision tree of a running server",
        description=_TREE_DESCRIPTION,
        epilog=_TREE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tree.add_argument(
        "--url", help="the server (default: $TRIOTOK_URL, else http://127.0.0.1:8000)"
    )
    tree.add_argument("--key", help="an admin API key of the operator tenant ($TRIOTOK_API_KEY)")
    tree.add_argument(
        "--prefix", metavar="PATH", help="only the subtree at PATH, e.g. /app/tenants"
    )
    tree.add_argument("--depth", type=int, metavar="N", help="show N levels below the start")
    states = ("starting", "running", "backoff", "restarting", "stopping", "stopped", "failed")
    tree.add_argument(
        "--state",
        choices=states,
        metavar="STATE",
        help=f"only actors in STATE, and the path to them; one of {', '.join(states)}",
    )
    tree.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_positive_seconds,
        metavar="SECONDS",
        help="redraw every SECONDS (default 2) until Ctrl-C",
    )
    tree.add_argument("--no-color", action="store_true", help="no colours")


_INDEX_DESCRIPTION = """\
Work on the search index of a TrioToK store: the read models that the
product and content lists and the search API answer from."""

_REBUILD_DESCRIPTION = """\
Rebuild the search index from the products and content nodes as stored, in
batches, by several workers, with a progress bar. Servers may keep running:
changes they make meanwhile are never lost or undone. If the rebuild stops
(Ctrl-C, a crash, a kill), run the same command again: it resumes after the
last batch it finished."""

_REBUILD_EPILOG = """\
Exit status: 0 done; 1 the store failed, or a rebuild of the same scope is
running elsewhere; 2 a usage or configuration problem; 130 interrupted."""


def _add_index_parser(commands: Any) -> None:
    index = commands.add_parser(
        "index", help="work on the search index", description=_INDEX_DESCRIPTION
    )
    actions = index.add_subparsers(
        dest="index_command",
        required=True,
        title="commands",
        metavar="COMMAND",
        help="what to do",
    )
    rebuild = actions.add_parser(
        "rebuild",
        help="rebuild the search index from the stored products and content",
        description=_REBUILD_DESCRIPTION,
        epilog=_REBUILD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rebuild.add_argument("--store", metavar="URL", help="the store (default: the settings')")
    rebuild.add_argument("--config", metavar="FILE", help="read settings from this TOML file")
    rebuild.add_argument("--tenant", metavar="T", help="only this tenant (default: every one)")
    rebuild.add_argument(
        "--type", choices=("product", "content"), help="only products or only content"
    )
    rebuild.add_argument(
        "--workers", type=int, default=1, metavar="N", help="batches worked on at once; default 1"
    )
    rebuild.add_argument(
        "--batch-size",
        type=int,
        default=500,
        metavar="B",
        help="rows per batch (1 to 1000); default 500",
    )
    rebuild.add_argument(
        "--pause",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="rest after each batch, to spare a busy database; default 0",
    )


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= seconds <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.1 and 3600 seconds")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``triotok`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "tree":
        from ._tree_command import main as tree_main

        return tree_main(args)
    if args.command == "index":
        from ._index_command import main as index_main

        return index_main(args)
    if args.command == "plugins":
        from ._plugins_command import main as plugins_main

        return plugins_main(args)
    if args.command == "events":
        from ._events_command import main as events_main

        return events_main(args)
    return 2  # pragma: no cover  # argparse rejects unknown commands


def _serve(args: argparse.Namespace) -> int:
    from ._exceptions import InvalidConfig
    from .config import load_settings

    flags: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "store_url": args.store,
        "workers": args.workers,
        "demo": args.demo,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "tracing": args.tracing,
        "metrics_port": args.metrics_port,
        "events_url": args.events,
    }
    worker_index = os.environ.get(_WORKER_ENV)
    env = {k: v for k, v in os.environ.items() if k != _WORKER_ENV}
    try:
        settings = load_settings(config_file=args.config, env=env, flags=flags)
    except InvalidConfig as exc:
        print(f"triotok: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from .telemetry import configure_logging

    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    if settings.workers > 1 and worker_index is None:
        return _run_workers(settings)
    if worker_index is None and settings.port != 0:
        problem = _port_problem(settings)
        if problem is not None:
            print(f"triotok: {problem}", file=sys.stderr)
            return 1
    import trio

    try:
        return trio.run(_run, settings, worker_index in (None, "0"))
    except KeyboardInterrupt:  # pragma: no cover  # a signal before the receiver is installed
        return 130


def _port_problem(settings: Settings) -> str | None:
    from .http import bind_socket

    try:
        bind_socket(settings.host, settings.port).close()
    except OSError as exc:
        return f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
    return None


async def _run(settings: Settings, announce: bool) -> int:
    import trio

    from ._exceptions import SupervisorFailed
    from .app import demo_banner, open_application

    try:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with open_application(settings) as app:
                    if announce:
                        print(demo_banner(app), flush=True)
                    logger.info("serving on %s (pid %d)", app.url, os.getpid())
                    async for signum in signals:
                        logger.info("%s: stopping gracefully", signal.Signals(signum).name)
                        break
                    nursery.start_soon(_force_on_second_signal, signals, nursery.cancel_scope)
                nursery.cancel_scope.cancel()
    except SupervisorFailed as exc:
        print(f"triotok: the application failed: {exc}", file=sys.stderr)
        return 1
    logger.info("stopped")
    return 0


async def _force_on_second_signal(signals: Any, scope: Any) -> None:
    async for signum in signals:
        logger.warning("second %s: cancelling the shutdown", signal.Signals(signum).name)
        scope.cancel()
        return


# ------------------------------------------------------------------ several processes


def _run_workers(settings: Settings) -> int:
    """Start ``workers`` processes sharing the port (SO_REUSEPORT); restart crashed ones.

    Each worker is a full node (its own tree and caches) on the shared
    database; cache invalidations reach the others through the outbox feed.
    SIGINT/SIGTERM are forwarded as one SIGTERM to every worker.
    """
    problem = _port_problem(settings)
    if problem is not None:
        print(f"triotok: {problem}", file=sys.stderr)
        return 1
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}
    for name in settings.__dataclass_fields__:
        base_env[f"TRIOTOK_{name.upper()}"] = str(getattr(settings, name))
    stopping = False

    def spawn(index: int) -> subprocess.Popen[bytes]:
        env = dict(base_env)
        env[_WORKER_ENV] = str(index)
        env["TRIOTOK_DEMO"] = str(settings.demo and index == 0)
        if settings.metrics_port:  # one listener per worker: metrics_port + its index
            env["TRIOTOK_METRICS_PORT"] = str(settings.metrics_port + index)
        code = "import sys; from triotok.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.Popen(
            [sys.executable, "-c", code, "serve"], env=env, start_new_session=True
        )

    workers = {i: spawn(i) for i in range(settings.workers)}
    restarts: list[float] = []

    def forward(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            alive = {i: p for i, p in workers.items() if p.poll() is None}
            if stopping and not alive:
                break
            for index, proc in workers.items():
                if proc.poll() is not None and not stopping:
                    now = time.monotonic()
                    restarts[:] = [t for t in restarts if now - t < 10.0] + [now]
                    if len(restarts) > 3 * settings.workers:
                        print("triotok: workers keep crashing; giving up", file=sys.stderr)
                        forward(signal.SIGTERM, None)
                        break
                    logger.warning("worker %d exited with %s; restarting", index, proc.returncode)
                    workers[index] = spawn(index)
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [p.returncode for p in workers.values() if p.returncode not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
