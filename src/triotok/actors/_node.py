"""What every node of the supervision tree has: identity, state, restart record.

Actors (:class:`~triotok.actors._cell.ActorCell`) and supervisors (in
``triotok.supervision``) both derive from :class:`Node`; ``system.tree()``
walks nodes.  A node outlives the incarnations of its actor: its mailbox,
counters and path stay across restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._stats import ActorState

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ("Node",)


class Node:
    """Base of actor cells and supervisors."""

    kind = "node"

    # Slots: a region holds 10,000 entity cells, and an instance dict is ~1.5 KB.
    __slots__ = (
        "closed",
        "components",
        "last_error",
        "last_error_at",
        "name",
        "parent",
        "path",
        "restarted_at",
        "restarts",
        "runtime",
        "started_at",
        "state",
        "stopped_at",
    )

    def __init__(self, runtime: Runtime, path: str, parent: Node | None) -> None:
        self.runtime = runtime
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.parent = parent
        self.state = ActorState.STARTING
        self.restarts = 0
        self.started_at: float | None = None
        self.restarted_at: float | None = None
        self.stopped_at: float | None = None
        self.last_error: BaseException | None = None
        self.last_error_at: float | None = None
        #: Stopped for good (not merely between incarnations): refs dead-letter.
        self.closed = False
        # Components that report into the tree (circuit breakers, caches) by name.
        self.components: dict[str, Any] = {}

    def set_state(self, state: ActorState) -> None:
        if state is not self.state:
            self.state = state
            hook = self.runtime.on_state_change
            if hook is not None:
                hook(self, state)

    def record_error(self, error: BaseException) -> None:
        self.last_error = error
        self.last_error_at = trio.current_time()

    def children(self) -> list[Node]:
        return []

    def request_stop(self) -> None:
        """Ask the node's current incarnation to finish (non-blocking)."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """This node alone as JSON-ready data (no children)."""
        error = self.last_error
        snap: dict[str, Any] = {
            "path": self.path,
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "restarted_at": self.restarted_at,
            "last_error": None
            if error is None
            else {"type": type(error).__name__, "message": str(error), "at": self.last_error_at},
        }
        if self.components:
            snap["components"] = {name: _component_view(c) for name, c in self.components.items()}
        return snap


def _component_view(component: Any) -> Any:
    stats = component.statistics()
    as_dict = getattr(stats, "as_dict", None)
    return as_dict() if as_dict is not None else stats
