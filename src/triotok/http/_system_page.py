"""The operators' page: ``GET /system`` and its script and stylesheet.

The three files are static and public: they carry no data. The page asks
the operator for an admin key of the operator tenant once, keeps it in the
tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on its
own calls to ``GET /system/tree`` and ``POST /system/actors/{restart,stop}``
(which enforce ``system:read`` / ``system:write`` as for any client). For
scripted use it also takes the key from the URL fragment, ``/system#key=…``:
a fragment never reaches the server or its logs, and the page removes it from
the address bar at once.

The files live in ``assets/`` (plain HTML, CSS and JavaScript, no build step)
and are served under a CSP of their own: scripts, styles and fetches from
this origin only, no inline code, no framing.
"""

from __future__ import annotations

import functools
from importlib import resources

from ._routes import Call, Reply, Route

__all__ = ("PAGE_CSP", "ROUTES")

#: The page's policy: same-origin script/style/fetch only; nothing inline, no framing.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files(__package__) / "assets" / name).read_bytes()


def _static(name: str, content_type: str) -> Reply:
    return Reply(
        _asset(name),
        200,
        headers={"Content-Security-Policy": PAGE_CSP},
        content_type=content_type,
    )


async def page(call: Call) -> Reply:
    return _static("system.html", "text/html; charset=utf-8")


async def script(call: Call) -> Reply:
    return _static("system.js", "text/javascript; charset=utf-8")


async def stylesheet(call: Call) -> Reply:
    return _static("system.css", "text/css; charset=utf-8")


ROUTES = (
    Route(
        "GET",
        "/system",
        page,
        "The operators' page: the live tree, refreshing itself (asks for an admin key)",
        "system",
        None,
        operation_id="getSystemPage",
        response=str,
        example='<!doctype html><html lang="en">…</html>',
        content_type="text/html",
    ),
    Route(
        "GET",
        "/system/assets/system.js",
        script,
        "The operators' page script",
        "system",
        None,
        operation_id="getSystemScript",
        response=str,
        example='"use strict";…',
        content_type="text/javascript",
    ),
    Route(
        "GET",
        "/system/assets/system.css",
        stylesheet,
        "The operators' page stylesheet",
        "system",
        None,
        operation_id="getSystemStylesheet",
        response=str,
        example=":root { color-scheme: light dark; }…",
        content_type="text/css",
    ),
)
