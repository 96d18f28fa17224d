"""Logs: JSON lines (or text on a terminal) with the request, tenant, trace and actor."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.telemetry.conftest import ServerFactory
from triotok import Actor, open_system
from triotok.app import MODULES
from triotok.http import Call, Route
from triotok.modules import Module, Permission
from triotok.telemetry import Telemetry, TelemetryOptions, configure_logging

logger = logging.getLogger("tests.telemetry")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """JSON logs into a buffer for the test; the root logger as it was afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    assert configure_logging("info", "auto", stream=buffer) == "json"  # not a terminal
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_a_line_outside_any_request_has_the_base_fields(stream: io.StringIO) -> None:
    logger.warning("plain %s", "text", extra={"order": 7})
    (line,) = lines(stream)
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.telemetry"
    assert line["message"] == "plain text"
    assert line["order"] == 7
    assert line["timestamp"].endswith("+00:00")
    assert not {"request_id", "tenant_id", "trace_id", "span_id", "actor"} & set(line)


def test_a_terminal_gets_text_lines_with_the_known_context() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    tty = Tty()
    try:
        assert configure_logging("info", "auto", stream=tty) == "text"
        logger.warning("hello")
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
    assert tty.getvalue().rstrip().endswith("WARNING tests.telemetry: hello")


async def test_an_actor_logs_its_path(stream: io.StringIO) -> None:
    class Chatty(Actor):
        async def receive(self, message: Any) -> Any:
            logger.warning("handling %s", message)
            return message

    async with open_system() as system:
        ref = await system.spawn(Chatty, name="chatty")
        assert await ref.ask("ping") == "ping"
    (line,) = [line for line in lines(stream) if line["logger"] == "tests.telemetry"]
    assert line["actor"] == "/app/chatty"


async def _logging_route(call: Call) -> dict[str, Any]:
    logger.warning("inside the request")
    return {"ok": True}


LOGGING = Module(
    name="testlog",
    routes=lambda: (
        Route(
            "GET",
            "/api/test-log",
            _logging_route,
            "Logs one line",
            "test",
            Permission("tenant", "read"),
        ),
    ),
)


async def test_a_request_logs_its_request_tenant_trace_and_span(
    make_server: ServerFactory, stream: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(
        TelemetryOptions(tracing="console"), span_processor=SimpleSpanProcessor(exporter)
    )
    trace_id = secrets.token_hex(16)
    async with make_server(modules=(*MODULES, LOGGING), telemetry=telemetry) as server:
        key = await server.key("acme")
        with trio.fail_after(30):
            reply = await server.client.get(
                "/api/test-log",
                headers={**server.auth(key), "traceparent": f"00-{trace_id}-{'1' * 16}-01"},
            )
        assert reply.status_code == 200, reply.text
    (line,) = [line for line in lines(stream) if line["message"] == "inside the request"]
    assert line["request_id"] == reply.headers["X-Request-Id"]
    assert line["tenant_id"] == "acme"
    assert line["trace_id"] == trace_id
    assert line["span_id"] == reply.headers["traceparent"].split("-")[2]
    (server_span,) = [s for s in exporter.get_finished_spans() if s.name == "GET /api/test-log"]
    assert f"{server_span.context.span_id:016x}" == line["span_id"]
