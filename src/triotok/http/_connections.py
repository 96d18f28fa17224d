"""The connection layer under the app: hypercorn's HTTP/1.1 protocol, our accept loop.

Invariants this module keeps, whatever a client does:

* **Every connection ends.** ``Connection: close`` and HTTP/1.0 requests close
  after their response; an idle keep-alive connection, and one whose request
  head is not complete, close after ``keep_alive_timeout``; a body slower than
  ``body_timeout`` gets 408 and the connection closes.
* **Open connections are capped** at ``max_connections`` (clamped below the
  process's file-descriptor limit): beyond it a connection is answered 503
  and closed at once, never queued, and the refusals are logged once per
  interval, not per accept. ``accept()`` running out of descriptors is logged
  the same way (no traceback per attempt).
* **Shutdown takes only what in-flight requests need**: the listener closes,
  idle connections close at once, the others when their response is done,
  and ``graceful_timeout`` is only the upper bound.
* **Every response carries the security headers**, also the ones hypercorn
  writes itself for requests it cannot parse (400, 431, 501), which get a
  problem+json body too.

Why not ``hypercorn.trio.serve`` (hypercorn 0.18, quart-trio 0.12): hypercorn
does its connection bookkeeping (close on ``Connection: close``, arm the idle
timer after a keep-alive response) *inside* the app's last ``send()``, and
that call first queues ``http.disconnect`` to the app. quart-trio reacts to
``http.disconnect`` by cancelling the request's nursery, which holds that very
``send()``: the bookkeeping is cancelled at its next checkpoint, before
``send_eof``/``aclose`` or before the idle timer starts, so the socket stays
open until the client goes away (upstream pgjones/hypercorn #330 and #170
show the symptoms). A bare ASGI app does not cancel itself and is not
affected. :class:`ShieldedSend` runs each ``send()`` shielded, so it completes
(hypercorn already shields the socket write it makes inside). The accept loop
is ours because hypercorn's has no connection cap and logs a traceback for
each failed ``accept()``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._middleware import SECURITY_HEADERS, request_id_from
from ._problems import PROBLEM_JSON, Problem, problem_body

__all__ = ("ShieldedSend", "connection_cap", "serve_connections", "server_error_response")

logger = logging.getLogger("triotok.http")

#: Descriptors kept free for the store, logs and the runtime when clamping the cap.
FD_RESERVE = 64
#: Repeated connection-level warnings are logged at most once per this many seconds.
LOG_INTERVAL = 10.0
#: How long ``accept()`` waits before retrying when the process is out of descriptors.
_ACCEPT_BACKOFF = 0.1
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

Scope = Any
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]


class ShieldedSend:
    """ASGI wrapper: the app's ``send()`` calls cannot be cancelled halfway.

    See the module docstring for the race it closes. A shielded ``send()``
    can wait only where hypercorn itself shields (writing to the socket), so
    the shield adds no new way to hang.
    """

    def __init__(self, app: AsgiApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def shielded(message: Any) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await self._app(scope, receive, shielded)


def connection_cap(max_connections: int) -> int:
    """``max_connections``, clamped to the descriptor limit less :data:`FD_RESERVE`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


class _Throttled:
    """A warning logged at most once per :data:`LOG_INTERVAL`, with the count it stands for."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._next = float("-inf")
        self._count = 0

    def hit(self, *args: object) -> None:
        self._count += 1
        now = trio.current_time()
        if now >= self._next:
            logger.warning(self._message + " (%d time(s) in the last interval)", *args, self._count)
            self._next = now + LOG_INTERVAL
            self._count = 0


# ------------------------------------------------------------------ hypercorn's own error answers

# hypercorn answers a request it cannot parse, or an app that failed before
# responding, with this head and no body (h11 writes the headers lowercased, in order).
_BARE_ERROR = b"\r\ncontent-length: 0\r\nconnection: close\r\n"
_SERVER_ERRORS = {
    400: ("bad_request", "the request is not valid HTTP/1.1"),
    404: ("route_not_found", "no route matches this URL"),
    431: ("headers_too_large", "the request head is too large"),
    500: ("internal_error", "the server failed to handle this request"),
    501: ("not_implemented", "this transfer coding is not supported"),
    503: ("too_many_connections", "the server is at its connection limit; retry"),
}
_SECURITY_LINES = b"".join(
    f"{name.lower()}: {value}\r\n".encode() for name, value in SECURITY_HEADERS.items()
)


def server_error_response(status: int, *, extra: bytes = b"") -> bytes:
    """A complete HTTP/1.1 problem+json response that also closes the connection."""
    code, detail = _SERVER_ERRORS[status]
    problem = Problem(status, code, detail)
    request_id = request_id_from(None)
    body = problem_body(problem, instance="", request_id=request_id)
    return (
        f"HTTP/1.1 {status} {problem.title}\r\ncontent-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n".encode()
        + _SECURITY_LINES
        + f"x-request-id: {request_id}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def _rewrite_bare_error(data: bytes) -> bytes | None:
    """hypercorn's bodiless error answer as a problem response, or ``None`` for anything else."""
    if not data.startswith(b"HTTP/1.") or data[12:13] != b" ":
        return None
    line_end = data.find(b"\r\n")
    if data[line_end : line_end + len(_BARE_ERROR)] != _BARE_ERROR:
        return None
    try:
        status = int(data[9:12])
    except ValueError:
        return None
    if status not in _SERVER_ERRORS or b"\r\nx-content-type-options:" in data:
        return None  # our gateway's answers already carry the headers
    return server_error_response(status)


# ------------------------------------------------------------------ the accept loop


async def serve_connections(
    app: AsgiApp,
    config: Any,
    sock: socket.socket,
    *,
    max_connections: int,
    shutdown_trigger: Callable[[], Awaitable[object]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on the listening ``sock`` until ``shutdown_trigger`` returns.

    Follows ``hypercorn.trio.run.worker_serve`` (lifespan, then connections,
    then graceful shutdown) with our accept loop and connection class.
    """
    from hypercorn.events import RawData
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

    class Connection(TCPServer):
        """hypercorn's connection, with its bodiless error answers made problems."""

        async def protocol_send(self, event: Any) -> None:
            if isinstance(event, RawData):
                rewritten = _rewrite_bare_error(event.data)
                if rewritten is not None:
                    event = RawData(data=rewritten)
            await super().protocol_send(event)

    asgi = wrap_app(ShieldedSend(app), config.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    lifespan = Lifespan(asgi, config, state)
    context = WorkerContext(None)
    cap = connection_cap(max_connections)
    if cap < max_connections:
        logger.warning("max_connections lowered to %d by the file-descriptor limit", cap)
    open_connections = 0
    refused = _Throttled("refused a connection: %d open connections is the cap")
    starved = _Throttled("accept() failed: %s; retrying")
    refusal = server_error_response(503, extra=b"retry-after: 1\r\n")

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal open_connections
        try:
            # hypercorn types the stream as TLS; it handles plain streams too (AttributeError).
            server = Connection(asgi, config, context, ConnectionState(state.copy()), stream)  # type: ignore[arg-type]
            await server.run()
        finally:
            open_connections -= 1

    async def accept_loop(listener: trio.SocketListener, handlers: trio.Nursery) -> None:
        nonlocal open_connections
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                starved.hit(exc.strerror)
                await trio.sleep(_ACCEPT_BACKOFF)
                continue
            if open_connections >= cap:
                refused.hit(cap)
                # A fresh socket's send buffer is empty: this never waits in practice.
                with trio.move_on_after(_ACCEPT_BACKOFF):
                    with contextlib.suppress(trio.BrokenResourceError):
                        await stream.send_all(refusal)
                await stream.aclose()
                continue
            open_connections += 1
            handlers.start_soon(handle, stream)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as handlers:
            listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
            task_status.started()
            try:
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(accept_loop, listener, handlers)
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
            finally:
                await listener.aclose()
                # Idle connections close now; busy ones after their response.
                await context.terminated.set()
                handlers.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
