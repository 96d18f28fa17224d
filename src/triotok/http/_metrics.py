"""``/metrics``: Prometheus's text format, on the API port (operator key) or a listener of its own.

On the API port ``GET /metrics`` needs an admin key of the operator tenant
like the other operators' routes. With ``metrics_port`` set, ``/app/metrics``
(:class:`MetricsServer`) also serves it on ``metrics_host:metrics_port``
(127.0.0.1 by default) without a key, for a Prometheus that scrapes from the
same machine or network. Both render the same registry, refreshed per scrape.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from .._exceptions import RequestError
from ..actors import Actor, UnknownMessage
from ..modules import Permission
from ._routes import Call, Reply, Route
from ._server import GetPort, bind_socket, hypercorn_config
from ._services import HttpOptions

__all__ = ("ROUTES", "MetricsServer", "metrics_app")

logger = logging.getLogger("triotok.http")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(call: Call) -> Reply:
    telemetry = call.services.telemetry
    collected = None if telemetry is None else telemetry.metrics
    if collected is None:
        raise RequestError("metrics are off on this server", status=404, code="metrics_off")
    return Reply(await collected.scrape(), 200, content_type=CONTENT_TYPE)


def metrics_app(collected: Any) -> Any:
    """A bare ASGI app answering ``GET /metrics`` from ``collected`` (a telemetry ``Metrics``)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics" or scope["method"] not in ("GET", "HEAD"):
            status, body, kind = 404, b"not found: scrape /metrics\n", b"text/plain"
        else:
            status, body, kind = 200, await collected.scrape(), CONTENT_TYPE.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app


class MetricsServer(Actor):
    """``/app/metrics``: ``GET /metrics`` without a key on ``host:port``; answers ``GetPort``."""

    def __init__(self, collected: Any, host: str, port: int) -> None:
        self._metrics = collected
        self.host = host
        self.port = port
        self._shutdown = trio.Event()
        self._done = trio.Event()

    async def on_start(self) -> None:
        await self.ctx.nursery.start(self._serve)

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        from ._connections import serve_connections

        sock = bind_socket(self.host, self.port, reuse_port=False)
        try:
            self.port = sock.getsockname()[1]
            config = hypercorn_config(HttpOptions(graceful_timeout=1.0))
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        logger.info("metrics on http://%s:%d/metrics", self.host, self.port)
        try:
            await serve_connections(
                metrics_app(self._metrics),
                config,
                sock,
                max_connections=16,
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


ROUTES = (
    Route(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics (text format 0.0.4); 404 when metrics are off",
        "system",
        Permission("system", "read", "platform"),
        operation_id="getMetrics",
        response=str,
        example="# HELP http_requests_total HTTP requests answered…",
        content_type="text/plain",
        errors=(404,),
    ),
)
