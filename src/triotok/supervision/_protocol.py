"""The seam of a running actor system: what code that is handed "a system" may use.

:class:`~triotok.ActorSystem` (from :func:`~triotok.open_system`) and
:class:`~triotok.testing.TestSystem` (from
:func:`~triotok.testing.open_test_system`) both satisfy :class:`System`;
mypy checks it (``_conforms`` below and in ``triotok/testing/_system.py``),
so helpers typed to take a ``System`` run under a server and a test alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._exceptions import SupervisorFailed
from ..actors import ActorRef, DeadLetterOffice, Mailbox
from ..actors.lowlevel import Node, Runtime
from ._entities import EntitiesRef
from ._entity_spec import Entities
from ._spec import Restart, SupervisorSpec
from ._supervisor import SupervisorRef

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ("System",)


@runtime_checkable
class System(Protocol):
    """What an actor system offers; ``ActorSystem`` and ``TestSystem`` both are one.

    ::

        async def start_workers(system: System, n: int) -> list[ActorRef]:
            return [await system.spawn(Worker, name=f"w{i}") for i in range(n)]
    """

    @property
    def name(self) -> str:
        """The system's name; its root supervisor is ``/<name>``."""
        ...

    @property
    def runtime(self) -> Runtime:
        """The runtime services (registry, dead letters, ``message_hook`` for tracing)."""
        ...

    @property
    def root(self) -> Node:
        """The root supervisor's node; ``ref("/<name>")`` is its :class:`SupervisorRef`."""
        ...

    @property
    def failure(self) -> SupervisorFailed | None:
        """Set when the root supervisor failed (its restart intensity was exceeded)."""
        ...

    @property
    def dead_letters(self) -> DeadLetterOffice:
        """The system's dead-letter office."""
        ...

    async def spawn(
        self,
        factory: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
    ) -> ActorRef:
        """Start ``factory(*args)`` under the root supervisor."""
        ...

    async def spawn_supervisor(
        self, spec: SupervisorSpec, *, restart: Restart = Restart.PERMANENT
    ) -> SupervisorRef:
        """Start a supervisor (and its children) under the root."""
        ...

    async def spawn_entities(
        self, spec: Entities, *, restart: Restart = Restart.PERMANENT
    ) -> EntitiesRef:
        """Start an entities region under the root."""
        ...

    def ref(self, path: str) -> ActorRef | SupervisorRef | EntitiesRef:
        """The ref of the live node at ``path`` (raises ``ActorNotFound``)."""
        ...

    async def restart(self, path: str) -> None:
        """Restart the actor or supervisor at ``path`` now (operators' action)."""
        ...

    async def stop_actor(self, path: str) -> None:
        """Stop the actor or supervisor at ``path`` for good (operators' action)."""
        ...

    def tree(
        self, *, prefix: str | None = None, depth: int | None = None, state: str | None = None
    ) -> dict[str, Any]:
        """A JSON-ready snapshot of the tree (or of the subtree at ``prefix``)."""
        ...

    async def stop(self) -> None:
        """Stop the whole tree gracefully (children in reverse start order)."""
        ...


if TYPE_CHECKING:

    def _conforms(system: ActorSystem) -> System:
        return system  # mypy checks that an ActorSystem is a System
