"""``/live``, ``/ready`` and ``/health``: public, cheap, never cached."""

from __future__ import annotations

import os
import time
from typing import Any

import trio

from .._exceptions import RequestError, TriotokError
from ..modules import HealthChecks
from ..transport import JetStreamTransport
from . import _system_models as models
from ._routes import Call, Reply, Route

__all__ = ("ROUTES", "WRITE_FAILURES_DEGRADED", "readiness")

_PING_TIMEOUT = 1.0

#: Transactions in a row that failed for want of a writable database (locked,
#: read-only, disk full) before ``/ready`` and ``/health`` report the store
#: degraded; the next commit makes it ``up`` again.
WRITE_FAILURES_DEGRADED = 3


async def live(call: Call) -> dict[str, Any]:
    return {"status": "live"}


async def _ping(call: Call) -> tuple[bool, dict[str, Any]]:
    handle = call.services.store
    if not handle.is_open:
        return False, {"status": "down", "error": "not open"}
    store = handle.store
    started = time.perf_counter()
    try:
        with trio.fail_after(_PING_TIMEOUT):
            await store.ping()
    except (TriotokError, trio.TooSlowError) as exc:
        code = exc.code if isinstance(exc, TriotokError) else "timeout"
        return False, {"status": "down", "error": code}
    stats = store.statistics()
    failures = stats.consecutive_write_failures
    degraded = failures >= WRITE_FAILURES_DEGRADED
    detail = {
        # A ping proves reads only: writes failing in a row mean the store is not usable.
        "status": "degraded" if degraded else "up",
        "consecutive_write_failures": failures,
        "backend": store.backend,
        "schema_version": store.schema_version,
        "ping_ms": round((time.perf_counter() - started) * 1000, 3),
        "statistics": stats.as_dict(),
    }
    return not degraded, detail


def _tree_status(call: Call) -> tuple[bool, dict[str, Any]]:
    system = call.services.system
    root_state = system.root.state.value
    down = []
    for path in call.services.required:
        try:
            state = system.tree(prefix=path, depth=0)["state"]
        except LookupError:
            state = "missing"
        if state != "running":
            down.append({"path": path, "state": state})
    ok = root_state == "running" and not down
    return ok, {"status": "up" if ok else "down", "root": root_state, "not_running": down}


async def _module_checks(call: Call) -> tuple[bool, dict[str, Any]]:
    """Run every module's declared health checks; ``False`` if a critical one is down."""
    services = call.services
    return await HealthChecks(services.modules, timeout=_PING_TIMEOUT).run(services.context)


async def readiness(call: Call) -> tuple[bool, dict[str, Any]]:
    """Whether the tree's required actors run, the store answers and no critical check is down.

    The required actors are the platform's (``/app/store``, ``/app/transport``,
    ``/app/http``) and every module's declared subtree; the checks are the
    modules' ``health`` declarations.
    """
    tree_ok, tree = _tree_status(call)
    store_ok, store = await _ping(call)
    modules_ok, modules = await _module_checks(call)
    return tree_ok and store_ok and modules_ok, {"tree": tree, "store": store, **modules}


async def ready(call: Call) -> dict[str, Any]:
    ok, detail = await readiness(call)
    if not ok:
        raise RequestError(
            "not ready: " + ", ".join(k for k, v in detail.items() if v["status"] != "up"),
            status=503,
            code="not_ready",
            checks=detail,
        )
    return {"status": "ready"}


def _events_status(call: Call) -> tuple[bool, dict[str, Any] | None]:
    """The L2 stream (None on L1): ``degraded`` while unreachable, the outbox keeping events.

    Not part of ``/ready``: a node without its stream still takes writes.
    """
    transport = call.services.context.bus.transport
    if not isinstance(transport, JetStreamTransport):
        return True, None
    stats = transport.statistics()
    detail = {
        "status": "up" if stats.available else "degraded",
        "connected": stats.connected,
        "lag": stats.lag,
        "published": stats.published,
        "last_error": stats.last_error,
        "stream": stats.state,
        "consumers": {c.name: {"running": c.running, **(c.server or {})} for c in stats.consumers},
    }
    return stats.available, detail


async def health(call: Call) -> Reply:
    ok, detail = await readiness(call)
    services = call.services
    subsystems: dict[str, Any] = dict(detail)
    events_ok, events = _events_status(call)
    if events is not None:
        subsystems["events"] = events
        ok = ok and events_ok
    letters = services.system.dead_letters.statistics()
    subsystems["dead_letters"] = {"status": "up", "total": letters.total}
    decision = services.context.mode.decision
    body = {
        "status": "ok" if ok else "degraded",
        "mode": {
            "mode": decision.mode.value,
            "computed": decision.computed.value,
            "reasons": [reason.as_dict() for reason in decision.reasons],
            "override": None if decision.override is None else decision.override.mode.value,
        },
        "version": services.version,
        "uptime_s": round(time.time() - services.started_at, 3),
        "pid": os.getpid(),
        "subsystems": subsystems,
    }
    return Reply(body, 200 if ok else 503)


ROUTES = (
    Route(
        "GET",
        "/live",
        live,
        "The process answers",
        "health",
        None,
        operation_id="getLive",
        response=models.Status,
        example={"status": "live"},
    ),
    Route(
        "GET",
        "/ready",
        ready,
        "The tree is running and the store reachable (503 otherwise)",
        "health",
        None,
        operation_id="getReady",
        response=models.Status,
        errors=(503,),
    ),
    Route(
        "GET",
        "/health",
        health,
        "Per-subsystem health (503 when degraded)",
        "health",
        None,
        operation_id="getHealth",
        response=models.Health,
        errors=(503,),
    ),
)
