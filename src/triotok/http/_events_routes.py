"""Operator routes of the L2 event stream: its state and replaying a consumer group.

Both need the operator tenant's admin key (``system:read`` / ``system:admin``)
and answer 409 ``no_event_stream`` on a node that runs L1 only (no
``events_url``). A replay moves every consumer of the group back in the
stream; the nodes of the group then handle those events again (their inbox
keeps effects single), and ``GET /system/events`` shows the lag shrinking.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .._exceptions import RequestError
from ..modules import Permission
from ..modules.audit import AuditEntry, record
from ..transport import JetStreamTransport
from . import _system_models as models
from ._routes import Call, Reply, Route

__all__ = ("ROUTES", "event_stream_of")


def event_stream_of(call: Call) -> JetStreamTransport | None:
    """The node's L2 transport, or None on L1."""
    transport = call.services.context.bus.transport
    return transport if isinstance(transport, JetStreamTransport) else None


def _require(call: Call) -> JetStreamTransport:
    stream = event_stream_of(call)
    if stream is None:
        raise RequestError(
            "this node has no event stream (events_url is not set: L1, the outbox)",
            status=409,
            code="no_event_stream",
        )
    return stream


async def events(call: Call) -> dict[str, Any]:
    return _require(call).statistics().as_dict()


async def replay(call: Call) -> Reply:
    stream = _require(call)
    body: models.EventReplay = call.body
    if (body.from_seq is None) == (body.since is None):
        raise RequestError(
            "give exactly one of from_seq and since", status=422, code="validation_failed"
        )
    since = None if body.since is None else datetime.fromtimestamp(body.since, UTC)
    assert call.key is not None
    async with call.services.store.store.transaction() as tx:
        entry = AuditEntry(
            call.principal, "events.replay", f"event-stream/{body.group}", call.key.tenant_id
        )
        await record(tx, entry)
    started = await stream.replay(body.group, from_seq=body.from_seq, since=since)
    return Reply(started.as_dict(), 200)


ROUTES = (
    Route(
        "GET",
        "/system/events",
        events,
        "The L2 event stream: connection, stream state, consumers, pending and lag",
        "system",
        Permission("system", "read", "platform"),
        operation_id="getEventStream",
        response=models.EventStream,
        errors=(409,),
    ),
    Route(
        "POST",
        "/system/events/replay",
        replay,
        "Replay a consumer group from a stream sequence or a time",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="replayEventGroup",
        body=models.EventReplay,
        response=models.EventReplayStarted,
        errors=(404, 409, 422, 503),
    ),
)
