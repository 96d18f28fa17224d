"""The actor system: the root supervisor, the runtime services and the tree view."""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._exceptions import ActorError, InvalidConfig, SupervisorFailed
from .._util import validate_name
from ..actors import ActorRef, ActorState, DeadLetterOffice, Mailbox
from ..actors.lowlevel import ActorCell, Node, Runtime
from ._entities import EntitiesRef
from ._entity_spec import Entities
from ._spec import ChildSpec, Restart, Strategy, SupervisorSpec
from ._supervisor import AnyRef, SupervisorNode, SupervisorRef

__all__ = ("ActorSystem", "open_system")

logger = logging.getLogger("triotok.system")


class ActorSystem:
    """A tree of supervised actors under one root supervisor ``/<name>``.

    Create it with :func:`open_system`; leaving that block stops the tree.
    """

    def __init__(
        self,
        name: str = "app",
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
    ) -> None:
        validate_name("name", name)
        self.name = name
        self.runtime = Runtime(name)
        self.runtime.system = self
        self.runtime.spawn_child = self._spawn_child
        spec = SupervisorSpec(name, strategy=strategy, intensity=intensity, period=period)
        self.root = SupervisorNode(self.runtime, f"/{name}", None, spec)
        self.runtime.register(self.root)
        self.failure: SupervisorFailed | None = None
        self._body_scope: trio.CancelScope | None = None
        self._names = itertools.count(1)

    # ------------------------------------------------------------------ spawning

    async def spawn(
        self,
        factory: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
    ) -> ActorRef:
        """Start ``factory(*args)`` as a child of the root supervisor at ``/<system>/<name>``.

        A :class:`SupervisorSpec` is refused (``InvalidConfig``): start it with
        :meth:`spawn_supervisor` (an :class:`Entities` spec with
        :meth:`spawn_entities`), which returns its ref.
        """
        _refuse_supervisor_spec(factory)
        spec = ChildSpec(
            name or self._auto_name(factory),
            factory,
            args,
            restart=restart,
            shutdown=shutdown,
            mailbox=mailbox or Mailbox(),
        )
        return _actor_ref(await self.root.start_child(spec))

    async def spawn_supervisor(
        self, spec: SupervisorSpec, *, restart: Restart = Restart.PERMANENT
    ) -> SupervisorRef:
        """Start a supervisor (and its children) under the root; returns its ref.

        An :class:`Entities` spec is refused (``InvalidConfig``): start it with
        :meth:`spawn_entities`, which returns an :class:`EntitiesRef`.
        """
        if not isinstance(spec, SupervisorSpec):
            raise InvalidConfig("spec", f"expected a SupervisorSpec, got {spec!r}")
        if isinstance(spec, Entities):
            raise InvalidConfig("spec", "an Entities spec: start it with spawn_entities")
        ref = await self.root.start_child(
            ChildSpec(spec.name, spec, restart=restart, shutdown=None)
        )
        assert isinstance(ref, SupervisorRef)
        return ref

    async def spawn_entities(
        self, spec: Entities, *, restart: Restart = Restart.PERMANENT
    ) -> EntitiesRef:
        """Start an entities region under the root at ``/<system>/<spec.name>``; returns its ref."""
        if not isinstance(spec, Entities):
            raise InvalidConfig("spec", f"expected an Entities spec, got {spec!r}")
        ref = await self.root.start_child(
            ChildSpec(spec.name, spec, restart=restart, shutdown=None)
        )
        assert isinstance(ref, EntitiesRef)
        return ref

    def _auto_name(self, factory: Callable[..., Any]) -> str:
        base = getattr(factory, "__name__", "actor").lower()
        return f"{base}-{next(self._names)}"

    async def _spawn_child(
        self,
        cell: ActorCell,
        nursery: trio.Nursery,
        factory: Callable[..., Any],
        args: tuple[Any, ...],
        name: str | None,
        mailbox: Mailbox | None,
        options: dict[str, Any],
    ) -> ActorRef:
        """``ctx.spawn``: children of an actor live in a supervisor tied to its incarnation."""
        _refuse_supervisor_spec(factory)
        sup = cell.child_supervisor
        if not isinstance(sup, SupervisorNode) or sup.state is not ActorState.RUNNING:
            # Not registered: it shares the actor's path; its children are registered.
            sup = SupervisorNode(self.runtime, cell.path, cell, SupervisorSpec(cell.name))
            cell.child_supervisor = sup
            await nursery.start(sup.run)
        spec = ChildSpec(
            name or self._auto_name(factory),
            factory,
            args,
            mailbox=mailbox or Mailbox(),
            **options,
        )
        return _actor_ref(await sup.start_child(spec))

    # ------------------------------------------------------------------ lookup and views

    def ref(self, path: str) -> ActorRef | SupervisorRef | EntitiesRef:
        """The ref of the live node at ``path`` (raises :class:`ActorNotFound`).

        An actor's (an entity's too) is an :class:`ActorRef`, a supervisor's a
        :class:`SupervisorRef`, an entities region's an :class:`EntitiesRef`.
        """
        node = self.runtime.lookup(path)
        if isinstance(node, ActorCell | SupervisorNode):
            return node.ref
        raise ActorError(f"{path} is a {node.kind}, which has no ref")  # pragma: no cover

    async def restart(self, path: str) -> None:
        """Restart the actor or supervisor at ``path`` now (operators' action).

        Raises :class:`ActorNotFound` for an unknown path and :class:`ActorError`
        for the root, which has no parent to restart it.
        """
        node = self.runtime.lookup(path.rstrip("/"))
        parent = node.parent
        if not isinstance(parent, SupervisorNode):
            raise ActorError(f"{node.path} has no supervisor to restart it")
        await parent.restart_child(node.name)

    async def stop_actor(self, path: str) -> None:
        """Stop the actor or supervisor at ``path`` for good (operators' action)."""
        node = self.runtime.lookup(path.rstrip("/"))
        parent = node.parent
        if not isinstance(parent, SupervisorNode):
            raise ActorError(f"{node.path} has no supervisor to stop it; use system.stop()")
        await parent.terminate_child(node.name)

    @property
    def dead_letters(self) -> DeadLetterOffice:
        return self.runtime.dead_letters

    def tree(
        self, *, prefix: str | None = None, depth: int | None = None, state: str | None = None
    ) -> dict[str, Any]:
        """A JSON-ready snapshot of the whole tree (or the subtree at ``prefix``).

        ``depth`` limits how many levels below the start are included;
        ``state`` keeps only nodes in that state (and the path to them).
        """
        start: Node = self.root if prefix is None else self.runtime.lookup(prefix.rstrip("/"))
        snap = _snapshot(start, depth, state)
        return snap if snap is not None else {**start.snapshot(), "children": []}

    # ------------------------------------------------------------------ lifecycle

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.runtime.ask_timer.run)
            try:
                await self.root.run(task_status=task_status)
            except SupervisorFailed as exc:
                self.failure = exc
                logger.error("the root supervisor %s failed: %s", self.root.path, exc)
                if self._body_scope is not None:
                    self._body_scope.cancel()
            nursery.cancel_scope.cancel()

    async def stop(self) -> None:
        """Stop the whole tree gracefully: children in reverse start order."""
        await self.root.shutdown()


def _refuse_supervisor_spec(factory: object) -> None:
    if isinstance(factory, SupervisorSpec):
        start = "spawn_entities" if isinstance(factory, Entities) else "spawn_supervisor"
        raise InvalidConfig("factory", f"a {type(factory).__name__}: start it with {start}")


def _actor_ref(ref: AnyRef) -> ActorRef:
    assert isinstance(ref, ActorRef)  # the factory was not a SupervisorSpec
    return ref


def _snapshot(node: Node, depth: int | None, state: str | None) -> dict[str, Any] | None:
    children: list[dict[str, Any]] = []
    if depth is None or depth > 0:
        below = None if depth is None else depth - 1
        for child in _tree_children(node):
            sub = _snapshot(child, below, state)
            if sub is not None:
                children.append(sub)
    if state is not None and node.state.value != state and not children:
        return None
    snap = node.snapshot()
    snap["children"] = children
    return snap


def _tree_children(node: Node) -> list[Node]:
    if isinstance(node, ActorCell):
        sup = node.child_supervisor
        return sup.children() if isinstance(sup, SupervisorNode) else []
    return node.children()


_startup_frozen = False


def _freeze_startup_objects() -> None:
    """Move what lives when the process's first system starts out of the collector's way.

    Modules, classes and configuration (OpenTelemetry's SDK alone adds tens
    of thousands of objects) live as long as the process, yet every full
    collection walked them: with the SDK imported, a 1-us message loop ran
    12-16 % slower than without it, and 2-8 % with the collector off.
    ``gc.freeze()`` after one collection moves them to the permanent
    generation, once per process, as gunicorn users and Instagram do.
    """
    global _startup_frozen
    if _startup_frozen:
        return
    _startup_frozen = True
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def open_system(
    name: str = "app",
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: int = 3,
    period: float = 5.0,
) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the block.

    ::

        async with open_system(name="app") as system:
            ref = await system.spawn(Counter, name="counter")
            await ref.ask("incr")

    Leaving the block stops the tree gracefully (children in reverse start
    order).  If the root supervisor fails (its restart intensity exceeded),
    the block is cancelled and :class:`SupervisorFailed` is raised from it.
    """
    _freeze_startup_objects()
    system = ActorSystem(name, strategy=strategy, intensity=intensity, period=period)
    body_error: Exception | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(system._run)
        try:
            with trio.CancelScope() as body:
                system._body_scope = body
                yield system
        except Exception as exc:
            # Re-raised below, outside the nursery, so callers see their own
            # exception rather than an ExceptionGroup around it.
            body_error = exc
        finally:
            system._body_scope = None
        if system.failure is None:
            await system.stop()
        nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
    if system.failure is not None:
        raise system.failure
