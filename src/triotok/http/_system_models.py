"""Models of the HTTP layer's own routes: health, the operators' JSON routes.

See ``_models`` for how routes use them; ``/openapi.json`` publishes each as
a named component.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from .._text import whole_match

__all__ = (
    "ActorAction",
    "ActorNode",
    "ActorQuery",
    "DeadLetterAction",
    "DeadLetterActionQuery",
    "DeadLetters",
    "DeadLettersQuery",
    "EventDeadLetters",
    "EventDeadLettersQuery",
    "EventReplay",
    "EventReplayStarted",
    "EventStream",
    "Health",
    "OpenApiDocument",
    "Status",
    "TreeQuery",
)

ActorState = Literal[
    "starting", "running", "backoff", "restarting", "stopping", "stopped", "failed"
]
# No example: schemathesis sends examples, and would stop a real actor with it.
ActorPath = Annotated[str, Meta(pattern=whole_match(r"(/[A-Za-z0-9_.\-]{1,128}){1,32}"))]
EventType = Annotated[str, Meta(pattern=whole_match(r"[A-Za-z0-9_.\-]{1,128}"))]
# Row ids are 64-bit in both stores: a larger number is a 400, not a 500.
RowId = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Source = Literal["bus", "outbox"]


# ---------------------------------------------------------------- health


class Status(Struct, frozen=True):
    """A one-word state (``live``, ``ready``)."""

    status: str

    EXAMPLE: ClassVar[dict[str, Any]] = {"status": "ready"}


class Health(Struct, frozen=True):
    """Per-subsystem health: ``status`` is ``ok`` only if every critical one is up.

    ``mode`` is the node's service mode (``full``, ``degraded``, ``read_only``,
    ``offline``), the mode its signals imply, and why.
    """

    status: Literal["ok", "degraded"]
    subsystems: dict[str, Any]
    mode: dict[str, Any] | UnsetType = UNSET
    version: str | UnsetType = UNSET
    uptime_s: float | UnsetType = UNSET
    pid: int | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "status": "ok",
        "version": "0.1.0",
        "uptime_s": 3600.5,
        "pid": 4242,
        "mode": {"mode": "full", "computed": "full", "reasons": [], "override": None},
        "subsystems": {
            "tree": {"status": "up", "root": "running", "not_running": []},
            "store": {"status": "up", "backend": "sqlite"},
            "dead_letters": {"status": "up", "total": 0},
        },
    }


# ---------------------------------------------------------------- the tree and dead letters


class ActorNode(Struct, frozen=True):
    """A node of the supervision tree, with its statistics and children."""

    path: str
    kind: Literal["actor", "supervisor"]
    state: ActorState
    children: list[dict[str, Any]]
    name: str | UnsetType = UNSET
    restarts: int | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "path": "/app",
        "name": "app",
        "kind": "supervisor",
        "state": "running",
        "restarts": 0,
        "children": [
            {
                "path": "/app/store",
                "name": "store",
                "kind": "actor",
                "state": "running",
                "children": [],
            }
        ],
    }


class TreeQuery(Struct, frozen=True):
    """``GET /system/tree``: the subtree at ``prefix``, ``depth`` levels, nodes in ``state``."""

    prefix: ActorPath | None = None
    depth: Annotated[int, Meta(ge=0, le=64)] | None = None
    state: ActorState | None = None


class DeadLetters(Struct, frozen=True):
    """The most recent dead letters (messages shown by type and bounded repr) and counts."""

    total: int
    items: list[dict[str, Any]]
    by_reason: dict[str, Any] | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "total": 1,
        "by_reason": {"crashed": 1},
        "items": [{"reason": "crashed", "recipient": "/app/tenants", "message": "Ping()"}],
    }


class DeadLettersQuery(Struct, frozen=True):
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class EventDeadLetters(Struct, frozen=True):
    """Dead-lettered events of one source."""

    source: str
    total: int
    items: list[dict[str, Any]]

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "source": "bus",
        "total": 1,
        "items": [{"id": 1, "event_type": "tenant.updated", "subscriber": "/app/search"}],
    }


class EventDeadLettersQuery(Struct, frozen=True):
    source: Source = "bus"
    event_type: EventType | None = None
    subscriber: ActorPath | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class DeadLetterActionQuery(Struct, frozen=True):
    """One entry (``id``), the entries matching the filters, or all of them."""

    source: Source = "bus"
    event_type: EventType | None = None
    subscriber: ActorPath | None = None
    id: RowId | None = None


class DeadLetterAction(Struct, frozen=True):
    """How many dead-lettered events were replayed or purged."""

    source: str
    replayed: int | UnsetType = UNSET
    purged: int | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"source": "bus", "replayed": 3}


class ActorQuery(Struct, frozen=True):
    path: ActorPath


class ActorAction(Struct, frozen=True):
    """The actor acted on: its new ``state``, or what was ``requested`` of it."""

    path: str
    requested: str | UnsetType = UNSET
    state: str | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"path": "/app/tenants", "state": "running"}


class OpenApiDocument(Struct, frozen=True):
    """This API's OpenAPI 3.1 description."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any] | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "openapi": "3.1.0",
        "info": {"title": "TrioToK", "version": "0.1.0"},
        "paths": {},
    }


# ---------------------------------------------------------------- the L2 event stream

GroupName = Annotated[str, Meta(pattern=whole_match(r"[A-Za-z0-9_.\-]{1,128}"))]


class EventStream(Struct, frozen=True):
    """The L2 stream as this node sees it: connection, counters, stream and consumers."""

    url: str
    stream: str
    connected: bool
    available: bool
    published: int
    duplicates: int
    publish_failures: int
    reconnects: int
    disconnects: int
    lag: int
    consumers: list[dict[str, Any]]
    last_error: str | None = None
    state: dict[str, Any] | None = None

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "url": "nats://127.0.0.1:4222",
        "stream": "TRIOTOK",
        "connected": True,
        "available": True,
        "published": 1200,
        "duplicates": 0,
        "publish_failures": 0,
        "reconnects": 0,
        "disconnects": 0,
        "lag": 0,
        "last_error": None,
        "state": {"messages": 1200, "first_seq": 1, "last_seq": 1200},
        "consumers": [{"name": "search-1a2b3c4d", "group": "search", "pattern": "*"}],
    }


class EventReplay(Struct, frozen=True, forbid_unknown_fields=True):
    """Replay ``group`` from stream sequence ``from_seq`` or from ``since`` (Unix seconds)."""

    group: GroupName
    from_seq: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None
    since: Annotated[float, Meta(ge=0, le=253402300799)] | None = None  # up to 9999-12-31

    EXAMPLE: ClassVar[dict[str, Any]] = {"group": "search", "from_seq": 1}


class EventReplayStarted(Struct, frozen=True):
    """The group's consumers, moved back; ``pending`` events are on their way again."""

    group: str
    consumers: list[dict[str, Any]]
    pending: int
    from_seq: int | None = None
    since: str | None = None

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "group": "search",
        "from_seq": 1,
        "since": None,
        "pending": 1200,
        "consumers": [{"name": "search-1a2b3c4d", "group": "search", "lag": 1200}],
    }
