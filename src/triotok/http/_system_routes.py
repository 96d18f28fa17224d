"""Operator JSON endpoints: the live tree, dead letters, the event DLQ, restarting and stopping.

Dead-lettered *events* come from two sources: ``bus`` (a subscriber failed to
handle the event: kept by the event bus with the subscriber and error) and
``outbox`` (the relay could not hand the event to the bus at all, or it was
undecodable: kept durably in the ``event_dead_letters`` table). Both are a
:class:`~triotok.transport.DeadLetterStore` in ``services.event_dead_letters``
under their name, so the routes below treat them alike.

All need an admin key of the operator tenant (``system:read`` /
``system:write``). The operators' HTML page (``GET /system``, in
``_system_page``) and the ``triotok tree`` command build on ``GET /system/tree``.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import ActorNotFound, RequestError
from ..modules import Permission
from ..modules.audit import AuditEntry, record
from ..transport import DeadLetterStore
from . import _system_models as models
from ._routes import Call, Reply, Route

__all__ = ("ROUTES",)


async def tree(call: Call) -> dict[str, Any]:
    query: models.TreeQuery = call.query
    try:
        return call.services.system.tree(prefix=query.prefix, depth=query.depth, state=query.state)
    except ActorNotFound:
        raise RequestError(
            f"no actor at {query.prefix!r}", status=404, code="actor_not_found"
        ) from None


async def dead_letters(call: Call) -> dict[str, Any]:
    office = call.services.system.dead_letters
    limit = call.query.limit
    stats = office.statistics()
    return {
        "total": stats.total,
        "by_reason": stats.by_reason,
        "items": [_letter(letter) for letter in office.recent(limit)],
    }


def _letter(letter: Any) -> dict[str, Any]:
    data: dict[str, Any] = letter.as_dict()
    # Messages are arbitrary objects: show their type and a bounded repr only.
    for key, value in list(data.items()):
        if not isinstance(value, str | int | float | bool | type(None)):
            data[key] = repr(value)[:500]
    return data


def _target(call: Call) -> str:
    path = str(call.query.path)  # required, and a path: ActorQuery
    root = f"/{call.services.system.name}"
    if path.rstrip("/") == root:
        raise RequestError(
            "the root supervisor cannot be stopped or restarted", status=409, code="conflict"
        )
    return path.rstrip("/")


async def _audit(call: Call, action: str, path: str) -> None:
    assert call.key is not None
    async with call.services.store.store.transaction() as tx:
        await record(tx, AuditEntry(call.principal, action, f"actor{path}", call.key.tenant_id))


async def restart_actor(call: Call) -> Reply:
    path = _target(call)
    system = call.services.system
    try:
        node = system.runtime.lookup(path)
    except ActorNotFound:
        raise RequestError(f"no actor at {path!r}", status=404, code="actor_not_found") from None
    await _audit(call, "actor.restart", path)
    http_path = f"/{system.name}/http"
    if http_path == path or http_path.startswith(path + "/"):
        # Restarting the server from inside one of its requests cannot wait
        # for itself: end the incarnation and let its supervisor restart it.
        node.request_stop()
        return Reply({"path": path, "requested": "restart"}, 200)
    await system.restart(path)
    return Reply({"path": path, "state": system.runtime.lookup(path).state.value}, 200)


async def stop_actor(call: Call) -> Reply:
    path = _target(call)
    try:
        ref = call.services.system.ref(path)
    except ActorNotFound:
        raise RequestError(f"no actor at {path!r}", status=404, code="actor_not_found") from None
    await _audit(call, "actor.stop", path)
    if path == f"/{call.services.system.name}/http":
        # Stopping the server from inside one of its requests cannot wait for itself.
        call.services.system.runtime.lookup(path).request_stop()
        return Reply({"path": path, "requested": "stop"}, 202)
    await ref.stop()
    return Reply({"path": path, "state": "stopped"}, 200)


def _dead_letter_store(call: Call) -> tuple[str, DeadLetterStore]:
    source = str(call.query.source)
    store = call.services.event_dead_letters.get(source)
    if store is None:
        raise RequestError(
            f"no dead-letter store {source!r} in this application", status=404, code="not_found"
        )
    return source, store


def _dlq_filters(call: Call) -> dict[str, Any]:
    query = call.query
    return {k: getattr(query, k) for k in ("event_type", "subscriber") if getattr(query, k)}


async def event_dead_letters(call: Call) -> dict[str, Any]:
    source, store = _dead_letter_store(call)
    limit = call.query.limit
    entries = await store.list(limit=limit, **_dlq_filters(call))
    return {
        "source": source,
        "total": await store.count(),
        "items": [entry.as_dict() for entry in entries],
    }


async def replay_event_dead_letters(call: Call) -> Reply:
    """Replay one entry (``id``), the entries matching the filters, or all of them."""
    source, store = _dead_letter_store(call)
    entry_id = call.query.id
    await _audit(call, "event_dead_letters.replay", f"event-dead-letters/{source}")
    if entry_id is not None:
        await store.replay(int(entry_id))  # NotFound: 404, ConflictError: 409
        return Reply({"source": source, "replayed": 1}, 200)
    replayed = await store.replay_where(**_dlq_filters(call))
    return Reply({"source": source, "replayed": replayed}, 200)


async def purge_event_dead_letters(call: Call) -> Reply:
    """Drop one entry (``id``), the entries matching the filters, or all of them."""
    source, store = _dead_letter_store(call)
    entry_id = call.query.id
    await _audit(call, "event_dead_letters.purge", f"event-dead-letters/{source}")
    if entry_id is not None:
        await store.purge(int(entry_id))  # NotFound: 404
        return Reply({"source": source, "purged": 1}, 200)
    purged = await store.purge_where(**_dlq_filters(call))
    return Reply({"source": source, "purged": purged}, 200)


ROUTES = (
    Route(
        "GET",
        "/system/tree",
        tree,
        "The live supervision tree (filter by prefix, depth, state)",
        "system",
        Permission("system", "read", "platform"),
        operation_id="getTree",
        query=models.TreeQuery,
        response=models.ActorNode,
        errors=(404,),
    ),
    Route(
        "GET",
        "/system/dead-letters",
        dead_letters,
        "The most recent dead letters and their counts",
        "system",
        Permission("system", "read", "platform"),
        operation_id="listDeadLetters",
        query=models.DeadLettersQuery,
        response=models.DeadLetters,
    ),
    Route(
        "GET",
        "/system/event-dead-letters",
        event_dead_letters,
        "Dead-lettered events: 'bus' (a subscriber failed) or 'outbox' (never handed over)",
        "system",
        Permission("system", "read", "platform"),
        operation_id="listEventDeadLetters",
        query=models.EventDeadLettersQuery,
        response=models.EventDeadLetters,
        errors=(404,),
    ),
    Route(
        "POST",
        "/system/event-dead-letters/replay",
        replay_event_dead_letters,
        "Replay one dead-lettered event (id), those matching the filters, or all",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="replayEventDeadLetters",
        query=models.DeadLetterActionQuery,
        response=models.DeadLetterAction,
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/system/event-dead-letters/purge",
        purge_event_dead_letters,
        "Drop one dead-lettered event (id), those matching the filters, or all",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="purgeEventDeadLetters",
        query=models.DeadLetterActionQuery,
        response=models.DeadLetterAction,
        errors=(404,),
    ),
    Route(
        "POST",
        "/system/actors/restart",
        restart_actor,
        "Restart an actor: its current incarnation stops, its supervisor starts a new one",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="restartActor",
        query=models.ActorQuery,
        response=models.ActorAction,
        errors=(404, 409),
    ),
    Route(
        "POST",
        "/system/actors/stop",
        stop_actor,
        "Stop an actor for good (its supervisor removes it)",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="stopActor",
        query=models.ActorQuery,
        response=models.ActorAction,
        errors=(404, 409),
    ),
)
