"""``/app/http``: hypercorn serving the Quart app, as a supervised actor.

Each incarnation binds its socket, builds the app and serves it with
hypercorn's HTTP/1.1 protocol under our accept loop
(:func:`~._connections.serve_connections`) in the actor's nursery; the actor
is running once the server listens. Stopping the actor triggers the graceful
shutdown: the listener closes, idle connections close, in-flight requests get
up to ``graceful_timeout`` seconds to finish, then the actor's ``on_stop``
returns and the supervisor stops the children left of it. A crash of the
server crashes the actor and its supervisor restarts it on the same port.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

import trio

from ..actors import Actor, UnknownMessage
from ._connections import serve_connections
from ._services import HttpOptions, Services

__all__ = ("GetPort", "HttpServer", "bind_socket", "hypercorn_config")

logger = logging.getLogger("triotok.http")


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound (not yet listening) TCP socket; ``reuse_port`` lets N processes share a port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def hypercorn_config(options: HttpOptions, sock: socket.socket | None = None) -> Any:
    """hypercorn's settings; with ``sock``, for ``hypercorn.trio.serve`` on it (which owns it).

    The HTTP benchmark serves its bare baseline with the same settings.
    """
    from hypercorn.config import Config

    config = Config()
    if sock is not None:
        # hypercorn wraps the descriptor in its own socket object, which owns it from here.
        config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = options.graceful_timeout
    config.accesslog = logging.getLogger("triotok.http.access") if options.access_log else None
    config.errorlog = logging.getLogger("triotok.http.server")
    config.backlog = 1024
    # Also the time a client has to send a complete request head (hypercorn's idle timer).
    config.keep_alive_timeout = options.keep_alive_timeout
    return config


@dataclass(frozen=True, slots=True)
class GetPort:
    """Ask :class:`HttpServer`: the reply is the TCP port it is bound to.

    ::

        port = await system.ref("/app/http").ask(GetPort())
    """


class HttpServer(Actor):
    """Serves ``services`` over HTTP on ``options.host:options.port``.

    ``self.port`` is the bound port (useful with port 0; also the reply to
    :class:`GetPort`); later incarnations rebind the same port.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        options = services.options
        self.host = options.host
        # A restart rebinds the port the first incarnation bound (also with port 0).
        self.port = services.port if services.port is not None else options.port
        self.app: Any = None
        self._shutdown = trio.Event()
        self._done = trio.Event()

    async def on_start(self) -> None:
        from ._app import create_app

        self.app = create_app(self._services)
        self._services.app = self.app
        await self.ctx.nursery.start(self._serve)

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        options = self._services.options
        sock = bind_socket(self.host, self.port, reuse_port=options.reuse_port)
        try:
            self.port = sock.getsockname()[1]
            self._services.port = self.port
            config = hypercorn_config(options)
            sock.listen(config.backlog)
        except BaseException:
            sock.close()
            raise
        try:
            await serve_connections(
                self.app,
                config,
                sock,
                max_connections=options.max_connections,
                shutdown_trigger=self._shutdown.wait,
                task_status=task_status,
            )
        finally:
            sock.close()
            self._done.set()

    async def receive(self, message: Any) -> Any:
        if isinstance(message, GetPort):
            return self.port
        raise UnknownMessage(self.ctx.path, message, (GetPort,))

    async def on_stop(self) -> None:
        self._shutdown.set()
        await self._done.wait()
