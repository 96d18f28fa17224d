"""Logs: JSON lines (python-json-logger) or text, with the request, tenant, trace and actor.

:func:`configure_logging` installs one handler on the root logger whose
:class:`ContextFilter` adds, where known: ``request_id`` and ``tenant_id``
(the HTTP request being served, from :data:`REQUEST_SCOPE`, which the
telemetry middleware sets), ``trace_id`` and ``span_id`` (the current span,
when tracing is on) and ``actor`` (the path of the actor whose task logs:
supervised children and entities run in tasks named after their path).

Why python-json-logger: the code logs through the standard library
everywhere (``logging.getLogger("triotok....")``, hypercorn's access and
error logs too); a ``logging.Formatter`` keeps every one of those calls as
they are, where structlog would add a second logging API to learn and wire.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import IO, Any

__all__ = ("REQUEST_SCOPE", "ContextFilter", "configure_logging", "resolve_log_format")

#: The ASGI scope of the request the current task serves (set by the middleware).
REQUEST_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("triotok_request", default=None)

#: Set once a tracer exists in this process: only then are trace ids looked up.
_tracing = False

#: The fields a JSON line carries, in this order (``None`` ones are left out).
JSON_FIELDS = ("timestamp", "level", "logger", "message")
_CONTEXT_FIELDS = ("request_id", "tenant_id", "trace_id", "span_id", "actor")


def tracing_installed() -> None:
    """Called by the tracing layer: from now on logs carry trace and span ids."""
    global _tracing
    _tracing = True


class ContextFilter(logging.Filter):
    """Adds the context fields of the module docstring to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = REQUEST_SCOPE.get()
        if scope is not None:
            state = scope.get("triotok")
            request_id = getattr(state, "request_id", None)
            if request_id is not None:
                record.request_id = request_id
            tenant_id = getattr(state, "tenant_id", None)
            if tenant_id is not None:
                record.tenant_id = tenant_id
        if _tracing:
            from opentelemetry import trace

            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = f"{span_context.trace_id:032x}"
                record.span_id = f"{span_context.span_id:016x}"
        actor = _actor_path()
        if actor is not None:
            record.actor = actor
        return True


def _actor_path() -> str | None:
    try:
        import trio

        name = trio.lowlevel.current_task().name
    except (RuntimeError, ImportError):  # not inside trio.run
        return None
    return name if name.startswith("/") else None


class _TextFormatter(logging.Formatter):
    """The classic line, followed by the context fields that are known."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [f"{k}={getattr(record, k)}" for k in _CONTEXT_FIELDS if hasattr(record, k)]
        return f"{line} [{' '.join(extra)}]" if extra else line


def resolve_log_format(log_format: str, stream: IO[str]) -> str:
    """``json`` or ``text``: ``auto`` is JSON unless ``stream`` is a terminal."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def json_formatter() -> logging.Formatter:
    """JSON lines: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, context."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        json_ensure_ascii=False,
    )


def configure_logging(
    level: str = "info", log_format: str = "auto", *, stream: IO[str] | None = None
) -> str:
    """Log to ``stream`` (stderr) at ``level`` as JSON lines or text; returns the format used.

    Replaces the handler a previous call installed, so it may run again.
    """
    stream = stream if stream is not None else sys.stderr
    chosen = resolve_log_format(log_format, stream)
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    if chosen == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("triotok")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "triotok":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return chosen
