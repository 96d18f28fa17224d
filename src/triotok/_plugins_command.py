"""``triotok plugins list|enable|disable|restart``: the plugin manager of a running server.

::

    $ TRIOTOK_API_KEY=ttk_... triotok plugins list
    NAME      STATE       VERSION  ISOLATION  TENANTS  RESTARTS  BREAKER  REASON
    seo       running     1.0.0    inline     1        0         closed
    webhooks  disabled    1.0.0    inline     0        0         -
    too-new   failed      1.0.0    process    0        0         -        needs plugin API ...
    $ triotok plugins enable webhooks --hosts hooks.example.com

Each command is one request to ``/system/plugins`` (an admin key of the
operator tenant, like ``triotok tree``), over the standard library's
:mod:`http.client`. ``enable`` grants what the plugin asks for unless
``--subscribe``, ``--publish``, ``--hosts`` or ``--no-routes`` narrow it.

Exit codes: 0 done; 1 the server could not do it (unreachable, no such
plugin, the plugin is refused or not enabled, a server error); 2 a usage or
access problem (no key, key refused, a grant beyond the plugin's request).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from . import __version__
from ._tree_command import DEFAULT_URL, KEY_ENV, TIMEOUT, URL_ENV

__all__ = ("main", "render_plugins", "request")


class CommandFailed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def request(
    url: str, key: str, method: str, path: str, body: Any = None, *, timeout: float = TIMEOUT
) -> Any:
    """One JSON request to the server at ``url``; its answer, or :class:`CommandFailed`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CommandFailed(f"invalid --url {url!r}: {exc}", 2) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandFailed(f"invalid --url {url!r}: expected http://HOST[:PORT]", 2)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = factory(parts.hostname, port, timeout=timeout)
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json",
        "User-Agent": f"triotok-plugins/{__version__}",
    }
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, parts.path.rstrip("/") + path, body=data, headers=headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
    except TimeoutError:
        raise CommandFailed(f"{url} did not answer in time", 1) from None
    except (OSError, http.client.HTTPException) as exc:
        raise CommandFailed(f"cannot connect to {url}: {exc}", 1) from None
    finally:
        connection.close()
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        raise CommandFailed(f"{url} did not answer JSON; is it a TrioToK server?", 1) from None
    if 200 <= status < 300:
        return answer
    problem = answer if isinstance(answer, Mapping) else {}
    message = f"{status} {problem.get('code', '')}: {problem.get('detail', '')}".strip()
    if status in (401, 403):
        raise CommandFailed(
            f"the server refused the key ({message}); use an admin key of the operator tenant", 2
        )
    raise CommandFailed(message, 2 if status in (400, 413, 415, 422) else 1)


def render_plugins(items: Sequence[Mapping[str, Any]]) -> str:
    """The plugins as a table, one line each."""
    header = ("NAME", "STATE", "VERSION", "ISOLATION", "TENANTS", "RESTARTS", "BREAKER", "REASON")
    rows = [header] + [
        (
            str(p.get("name")),
            str(p.get("state")),
            str(p.get("version") or "-"),
            str(p.get("isolation") or "-"),
            str(p.get("tenants", 0)),
            str(p.get("restarts", 0)),
            str(p.get("breaker") or "-"),
            " ".join(str(p.get("reason") or "").split())[:200],
        )
        for p in items
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    )


def _grants(args: Any, current: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not (args.subscribe or args.publish or args.hosts or args.no_routes):
        return None
    asked = dict(current or {})
    return {
        "subscribe": args.subscribe or asked.get("subscribe", []),
        "publish": args.publish or asked.get("publish", []),
        "routes": False if args.no_routes else bool(asked.get("routes", False)),
        "hosts": args.hosts or asked.get("hosts", []),
        "storage": asked.get("storage"),
    }


def run(args: Any, *, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    url = args.url or env.get(URL_ENV) or DEFAULT_URL
    key = args.key or env.get(KEY_ENV)
    if not key:
        print(f"triotok plugins: no API key: pass --key or set {KEY_ENV}", file=err)
        return 2
    try:
        if args.action == "list":
            answer = request(url, key, "GET", "/system/plugins")
            print(render_plugins(answer["items"]), file=out)
            return 0
        name = quote(args.name, safe="")
        body: Any = None
        if args.action == "enable":
            listed = request(url, key, "GET", "/system/plugins")["items"]
            asked = next((p.get("requested") for p in listed if p.get("name") == args.name), None)
            grants = _grants(args, asked)
            body = {} if grants is None else {"grants": grants}
        answer = request(url, key, "POST", f"/system/plugins/{name}/{args.action}", body)
        print(render_plugins([answer]), file=out)
        return 0 if args.action == "disable" or answer.get("state") != "failed" else 1
    except CommandFailed as exc:
        print(f"triotok plugins: {exc}", file=err)
        return exc.exit_code


def add_parser(commands: Any) -> None:
    import argparse

    plugins = commands.add_parser(
        "plugins",
        help="list, enable, disable or restart the plugins of a running server",
        description="Operate the plugins of a running TrioToK server (an admin key of the "
        "operator tenant, as for 'triotok tree').",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 done; 1 the server could not do it; 2 a usage or access problem.",
    )
    actions = plugins.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, enable, disable or restart"
    )
    for action, text in (
        ("list", "every discovered plugin: state (and why it failed), version, counters"),
        ("enable", "enable a plugin, granting what it asks for (or less)"),
        ("disable", "disable a plugin: its subtree stops"),
        ("restart", "restart an enabled or failed plugin"),
    ):
        sub = actions.add_parser(action, help=text, description=text[:1].upper() + text[1:] + ".")
        if action != "list":
            sub.add_argument("name", help="the plugin's name")
        sub.add_argument("--url", help=f"the server (default: ${URL_ENV}, else {DEFAULT_URL})")
        sub.add_argument("--key", help=f"an admin API key of the operator tenant (${KEY_ENV})")
        if action == "enable":
            sub.add_argument("--subscribe", nargs="+", metavar="PATTERN", help="grant only these")
            sub.add_argument("--publish", nargs="+", metavar="PATTERN", help="grant only these")
            sub.add_argument("--hosts", nargs="+", metavar="HOST", help="grant only these hosts")
            sub.add_argument("--no-routes", action="store_true", help="do not grant its routes")


def main(args: Any) -> int:
    """``triotok plugins ...`` (``args`` from the ``cli`` parser)."""
    return run(args, env=os.environ, out=sys.stdout, err=sys.stderr)
