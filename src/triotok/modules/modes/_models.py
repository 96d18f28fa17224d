"""The modes module's HTTP models: what ``/system/mode`` reads and answers."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from ..._text import NAME_PATTERN

__all__ = ("ModeOverrideRequest", "ServiceModeView")

ModeName = Literal["full", "degraded", "read_only", "offline"]
Reason = Annotated[
    str,
    Meta(min_length=1, max_length=500, pattern=NAME_PATTERN, description="Why (audited)"),
]
ExpiresIn = Annotated[
    float, Meta(gt=0, le=7 * 24 * 3600, description="Seconds until the override lapses")
]

_VIEW: dict[str, Any] = {
    "node": "host:4242",
    "mode": "read_only",
    "computed": "read_only",
    "reasons": [{"signal": "store", "mode": "read_only", "detail": "the store cannot be read"}],
    "override": None,
    "retry_after": 5.0,
    "scope": "cluster",
    "since_changes": 2,
    "history": [],
    "nodes": [],
    "statistics": {},
}


class ModeOverrideRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Put every node in ``mode`` for ``expires_in`` seconds (none: until lifted)."""

    mode: ModeName
    reason: Reason
    expires_in: ExpiresIn | None = None

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "mode": "read_only",
        "reason": "database maintenance",
        "expires_in": 900,
    }


class ServiceModeView(Struct, frozen=True):
    """This node's mode, the mode its signals imply, why, the override and every node's mode.

    ``scope``: ``cluster`` when the override is the store's, ``node`` when
    the store could not take it and it holds on this node only.
    """

    node: str
    mode: ModeName
    computed: ModeName
    reasons: list[dict[str, str]]
    override: dict[str, Any] | None
    retry_after: float
    scope: Literal["cluster", "node"]
    since_changes: int
    history: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    statistics: dict[str, Any]

    EXAMPLE: ClassVar[dict[str, Any]] = _VIEW
