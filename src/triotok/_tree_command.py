"""``triotok tree``: the live supervision tree of a running server, in the terminal.

::

    $ TRIOTOK_API_KEY=ttk_... triotok tree --prefix /app/transport
    transport  supervisor  running     one_for_one 3/5.0s  restarts 0
    ├── feed   actor       running     mailbox 0/1000  processed 0  failed 0  restarts 0
    ├── bus    actor       running     mailbox 0/1000  processed 0  failed 0  restarts 0
    └── relay  actor       running     mailbox 0/1000  processed 0  failed 0  restarts 0

It fetches ``GET /system/tree`` (an admin key of the operator tenant) with
the standard library's :mod:`http.client`: a client command must run on the
runtime dependencies alone, starts fast without importing httpx, and needs
no proxy handling (``--url`` is the server itself). Colours follow the node state,
and are off when the output is not a terminal, with ``--no-color`` or when
``NO_COLOR`` is set. ``--watch`` redraws every few seconds until Ctrl-C, and
keeps watching (saying so) while the server cannot be reached.

Exit codes: 0 success; 1 the tree could not be fetched (server unreachable,
no such actor, server error); 2 a usage or access problem (no key, key
refused, invalid filter, invalid ``--url``).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from . import __version__

__all__ = ("TreeOptions", "TreeRequestFailed", "fetch_tree", "render_tree", "run")

#: Environment variables read by the client commands (the server ignores them).
KEY_ENV = "TRIOTOK_API_KEY"  # both in config.CLIENT_ENV
URL_ENV = "TRIOTOK_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds to connect, and then for each read of the answer.
TIMEOUT = 10.0

_RESET = "\x1b[0m"
_STATE_COLOURS = {
    "running": "\x1b[32m",  # green
    "starting": "\x1b[36m",  # cyan
    "restarting": "\x1b[35m",  # magenta
    "backoff": "\x1b[33m",  # yellow
    "stopping": "\x1b[33m",
    "stopped": "\x1b[2m",  # dim
    "failed": "\x1b[1;31m",  # bold red
}
_BREAKER_COLOURS = {
    "closed": "\x1b[32m",
    "half_open": "\x1b[33m",
    "open": "\x1b[1;31m",
    "forced_open": "\x1b[1;31m",
    "disabled": "\x1b[2m",
}
_MODE_COLOURS = {
    "full": "\x1b[32m",
    "degraded": "\x1b[33m",
    "read_only": "\x1b[1;33m",
    "offline": "\x1b[1;31m",
}
_ERROR = "\x1b[31m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"


class TreeRequestFailed(Exception):
    """The tree could not be fetched; ``exit_code`` is 1 (server side) or 2 (caller side)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class TreeOptions:
    """What ``triotok tree`` was asked for."""

    url: str = DEFAULT_URL
    key: str | None = None
    prefix: str | None = None
    depth: int | None = None
    state: str | None = None
    watch: float | None = None
    color: bool = False


# ------------------------------------------------------------------ fetching


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.body)


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the server of ``url`` and the path of its tree endpoint."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise TreeRequestFailed(f"invalid --url {url!r}: {exc}", 2) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TreeRequestFailed(
            f"invalid --url {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]", 2
        )
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return factory(parts.hostname, port, timeout=timeout), parts.path.rstrip("/") + "/system/tree"


def _get(options: TreeOptions, params: Mapping[str, str | int], timeout: float) -> _Answer:
    connection, path = _connection(options.url, timeout)
    headers = {
        "Authorization": f"Bearer {options.key}",
        "Accept": "application/json",
        "User-Agent": f"triotok-tree/{__version__}",
    }
    target = f"{path}?{urlencode(params)}" if params else path
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return _Answer(response.status, response.reason, response.read())
    except TimeoutError:
        raise TreeRequestFailed(f"{options.url} did not answer in time", 1) from None
    except http.client.HTTPException as exc:
        raise TreeRequestFailed(f"request to {options.url} failed: {_reason(exc)}", 1) from None
    except OSError as exc:  # refused, unreachable, unknown host, reset, TLS errors
        raise TreeRequestFailed(f"cannot connect to {options.url}: {_reason(exc)}", 1) from None
    finally:
        connection.close()


def fetch_tree(options: TreeOptions, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``GET /system/tree`` with the options' filters; :class:`TreeRequestFailed` on failure."""
    params: dict[str, str | int] = {}
    if options.prefix is not None:
        params["prefix"] = options.prefix
    if options.depth is not None:
        params["depth"] = options.depth
    if options.state is not None:
        params["state"] = options.state
    url = options.url.rstrip("/") + "/system/tree"
    response = _get(options, params, timeout)
    if response.status == 200:
        try:
            tree = response.json()
        except ValueError:
            tree = None
        if not isinstance(tree, dict):
            raise TreeRequestFailed(f"{url} did not answer JSON; is it a TrioToK server?", 1)
        return tree
    problem = _problem(response)
    code = problem.get("code", "")
    detail = problem.get("detail", response.reason)
    message = f"{response.status} {code + ': ' if code else ''}{detail}"
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        message += f": {errors[0].get('path', '')} {errors[0].get('message', '')}".rstrip()
    if response.status in (401, 403):
        hint = "use an admin key of the operator tenant (--key or TRIOTOK_API_KEY)"
        raise TreeRequestFailed(f"the server refused the key ({message}); {hint}", 2)
    if response.status == 400:
        raise TreeRequestFailed(f"invalid filter ({message})", 2)
    if response.status == 404 and code != "actor_not_found":
        raise TreeRequestFailed(f"{url}: {message}; is it a TrioToK server?", 1)
    raise TreeRequestFailed(message, 1)


def _problem(response: _Answer) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# ------------------------------------------------------------------ rendering


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    return f"{colour}{text}{_RESET}" if enabled and colour else text


def _rows(node: Mapping[str, Any], lead: str, branch: str) -> list[tuple[str, Mapping[str, Any]]]:
    rows = [(branch, node)]
    children = node.get("children") or []
    for index, child in enumerate(children):
        last = index == len(children) - 1
        rows += _rows(
            child, lead + ("    " if last else "│   "), lead + ("└── " if last else "├── ")
        )
    return rows


def render_tree(tree: Mapping[str, Any], *, color: bool = False) -> str:
    """The tree as text, one line per node (ANSI colours by state when ``color``)."""
    rows = _rows(tree, "", "")
    width = max(len(prefix) + len(str(node.get("name", ""))) for prefix, node in rows)
    lines = []
    for prefix, node in rows:
        name = str(node.get("name", node.get("path", "?")))
        state = str(node.get("state", "?"))
        cells = [
            prefix + _paint(name, _BOLD, color) + " " * (width - len(prefix) - len(name)),
            f"{node.get('kind', '?'):<10}",
            _paint(f"{state:<10}", _STATE_COLOURS.get(state), color),
        ]
        stats = node.get("statistics")
        if isinstance(node.get("entities"), Mapping) and isinstance(stats, Mapping):
            # An entities region: how many are active, out of how many activations.
            cells.append(
                f"entities {stats.get('active', 0)}/{stats.get('max_active', '?')}"
                f"  activations {stats.get('activations', 0)}"
                f"  passivations {stats.get('passivations', 0)}"
            )
        elif isinstance(stats, Mapping):
            cells.append(
                f"mailbox {stats.get('mailbox_depth', '?')}/{stats.get('capacity', '?')}"
                f"  processed {stats.get('processed', 0)}  failed {stats.get('failed', 0)}"
            )
        elif "strategy" in node:
            cells.append(
                f"{node['strategy']} {node.get('intensity', '?')}/{node.get('period', '?')}s"
            )
        cells.append(f"restarts {node.get('restarts', 0)}")
        components = node.get("components")
        if isinstance(components, Mapping):
            for part, value in sorted(components.items()):
                if isinstance(value, Mapping) and isinstance(value.get("state"), str):
                    text = f"breaker {part}={value['state']}"
                    cells.append(_paint(text, _BREAKER_COLOURS.get(value["state"]), color))
                elif isinstance(value, Mapping) and value.get("rebuild_id") is not None:
                    cells.append(f"{part} {_progress(value)}")
                elif isinstance(value, Mapping) and value.get("lag_events") is not None:
                    cells.append(
                        f"lag {value['lag_events']} events/{value.get('lag_seconds', 0):g}s"
                        f"  applied {value.get('applied_position')}/{value.get('head_position')}"
                    )
                elif isinstance(value, Mapping) and isinstance(value.get("mode"), str):
                    mode = value["mode"]
                    reasons = ",".join(str(r) for r in value.get("reasons") or ())
                    text = f"mode {mode}" + (f" ({reasons})" if reasons else "")
                    cells.append(_paint(text, _MODE_COLOURS.get(mode), color))
        error = node.get("last_error")
        if error:
            if isinstance(error, Mapping):
                error = f"{error.get('type', 'Error')}: {error.get('message', '')}"
            text = " ".join(str(error).split())
            cells.append(_paint(f"error: {text[:200]}", _ERROR, color))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _progress(stats: Mapping[str, Any], width: int = 20) -> str:
    """A rebuild's progress: ``[#####.....] 52.0% 5,200/10,000 rows 4,100 rows/s ETA 1s``."""
    percent = float(stats.get("percent") or 0.0)
    filled = round(min(100.0, max(0.0, percent)) / 100 * width)
    eta = stats.get("eta_s")
    text = (
        f"[{'#' * filled}{'.' * (width - filled)}] {percent:.1f}%"
        f" {int(stats.get('rows_done') or 0):,}/{int(stats.get('rows_total') or 0):,} rows"
        f" {float(stats.get('rows_per_s') or 0):,.0f} rows/s"
    )
    if stats.get("status") != "running":
        return f"{text} {stats.get('status')}"
    return text if eta is None else f"{text} ETA {float(eta):.0f}s"


# ------------------------------------------------------------------ the command


def use_color(stream: TextIO, *, no_color: bool, env: Mapping[str, str]) -> bool:
    """Colours only on a terminal, and never with ``--no-color`` or ``NO_COLOR`` set."""
    if no_color or env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run(options: TreeOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Fetch and print the tree (once, or until Ctrl-C with ``watch``); the exit code."""
    if not options.key:
        print(f"triotok tree: no API key: pass --key or set {KEY_ENV}", file=err)
        return 2
    if options.watch is not None:
        return _watch(options, out, err)
    try:
        tree = fetch_tree(options)
    except TreeRequestFailed as exc:
        print(f"triotok tree: {exc}", file=err)
        return exc.exit_code
    print(render_tree(tree, color=options.color), file=out)
    return 0


def _watch(options: TreeOptions, out: TextIO, err: TextIO) -> int:
    assert options.watch is not None
    clear = "\x1b[H\x1b[2J" if options.color else ""
    try:
        while True:
            stamp = time.strftime("%H:%M:%S")
            try:
                body = render_tree(fetch_tree(options), color=options.color)
            except TreeRequestFailed as exc:
                if exc.exit_code == 2:
                    print(f"triotok tree: {exc}", file=err)
                    return 2
                body = f"triotok tree: {exc} (retrying)"
            header = f"{options.url}  every {options.watch:g}s  updated {stamp}  (Ctrl-C to stop)"
            out.write(f"{clear}{_paint(header, _DIM, options.color)}\n{body}\n\n")
            out.flush()
            time.sleep(options.watch)
    except KeyboardInterrupt:
        return 0


def options_from(args: Any, *, stream: TextIO, env: Mapping[str, str]) -> TreeOptions:
    """Build :class:`TreeOptions` from parsed ``triotok tree`` arguments and the environment."""
    return TreeOptions(
        url=args.url or env.get(URL_ENV) or DEFAULT_URL,
        key=args.key or env.get(KEY_ENV),
        prefix=args.prefix,
        depth=args.depth,
        state=args.state,
        watch=args.watch,
        color=use_color(stream, no_color=args.no_color, env=env),
    )


def main(args: Any) -> int:
    """``triotok tree`` (``args`` from the ``cli`` parser)."""
    return run(options_from(args, stream=sys.stdout, env=os.environ))
