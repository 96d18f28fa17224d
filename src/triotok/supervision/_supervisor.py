"""The supervisor engine: starts, watches, restarts and stops its children.

Each child runs as a task in the supervisor's nursery inside its own cancel
scope; a child's exit (normal, crash or kill) becomes an event on the
supervisor's control channel.  Structural changes (handling an exit,
``start_child``, ``terminate_child``) are serialised by one lock, so the
children list only changes between whole operations.  Because every child
task lives in the supervisor's nursery, no task outlives its supervisor.

Which children a supervisor holds (OTP):

- Every incarnation starts with exactly the children of its spec; children
  added by ``start_child`` belong to one incarnation and are closed when the
  next one begins.
- A TEMPORARY child is never started twice: when it exits, or when a group
  restart stops it, it is removed.  Its own exit is never counted.
- A child that fails before it is up (factory or ``on_start`` raised) while
  being *started* is not kept and not counted: the starter gets
  ``ChildStartFailed``.  Failing while being *restarted* is a crash like any
  other, counted against the intensity.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import trio

from .._exceptions import ActorError, ChildStartFailed, InvalidConfig, SupervisorFailed
from .._util import single_leaf
from ..actors import ActorRef, ActorState, DeadLetterReason
from ..actors.lowlevel import ActorCell, Node, Runtime
from ..resilience import BackoffState
from ._intensity import RestartIntensity
from ._spec import ChildSpec, Restart, Strategy, SupervisorSpec

if TYPE_CHECKING:
    from ._entities import EntitiesRef

__all__ = (
    "ChildInfo",
    "SupervisorNode",
    "SupervisorRef",
    "SupervisorStatistics",
)

#: The ref of any node in the tree: an actor's, a supervisor's or an entities region's.
AnyRef: TypeAlias = "ActorRef | SupervisorRef | EntitiesRef"
_N = TypeVar("_N", bound="SupervisorNode")

logger = logging.getLogger("triotok.supervision")


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of :meth:`SupervisorRef.which_children`."""

    id: str
    ref: AnyRef
    kind: str
    state: str


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """A point-in-time view of one supervisor (:meth:`SupervisorRef.statistics`).

    ``children`` is how many children it holds, ``active`` how many of them
    run now; ``restarts_in_period`` counts the restarts of its children within
    the last ``period`` seconds (more than ``intensity`` and it fails);
    ``restarts`` is how often the supervisor itself was restarted.
    """

    path: str
    state: str
    strategy: str
    intensity: int
    period: float
    restarts: int
    restarts_in_period: int
    children: int
    active: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "state": self.state,
            "strategy": self.strategy,
            "intensity": self.intensity,
            "period": self.period,
            "restarts": self.restarts,
            "restarts_in_period": self.restarts_in_period,
            "children": self.children,
            "active": self.active,
            "last_error": self.last_error,
        }


class _Status:
    """A ``task_status`` that also tells the child task that start-up finished."""

    __slots__ = ("_on_started",)

    def __init__(self, on_started: Any) -> None:
        self._on_started = on_started

    def started(self, value: Any = None) -> None:
        self._on_started()


class _Child:
    """The supervisor's record of one child across its incarnations."""

    __slots__ = ("backoff", "done", "incarnation", "node", "running", "scope", "spec", "stopping")

    def __init__(self, spec: ChildSpec, node: ActorCell | SupervisorNode) -> None:
        self.spec = spec
        self.node = node
        self.scope: trio.CancelScope | None = None
        self.done = trio.Event()
        self.done.set()
        self.running = False
        self.stopping = False
        self.incarnation = 0
        self.backoff: BackoffState | None = None


@dataclass(frozen=True, slots=True)
class _Exit:
    child: _Child
    incarnation: int
    error: Exception | None
    killed: bool


@dataclass(frozen=True, slots=True)
class _RestartDue:
    group: tuple[_Child, ...]


_STOP = object()


class SupervisorNode(Node):
    """Runtime of one supervisor (see the module docstring)."""

    kind = "supervisor"

    def __init__(
        self,
        runtime: Runtime,
        path: str,
        parent: Node | None,
        spec: SupervisorSpec,
        *,
        register: bool = True,
    ) -> None:
        super().__init__(runtime, path, parent)
        self.spec = spec
        self.terminate_requested = False
        self.ref: SupervisorRef | EntitiesRef = self._make_ref()
        self.intensity = RestartIntensity(spec.intensity, spec.period)
        self._register = register
        self._lock = trio.Lock()
        self._send: trio.MemorySendChannel[Any] | None = None
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()
        # Ordered by start order (dicts keep insertion order); keyed by id so
        # lookups stay O(1) under the root of a system with 10,000 actors.
        self.children_: dict[str, _Child] = {}
        for child_spec in spec.child_specs:
            self.children_[child_spec.id] = self._make_child(child_spec)
        self._incarnations = 0

    def _make_ref(self) -> SupervisorRef | EntitiesRef:
        return SupervisorRef(self)

    # ------------------------------------------------------------------ structure

    def _make_child(self, spec: ChildSpec) -> _Child:
        path = f"{self.path}/{spec.id}"
        node: ActorCell | SupervisorNode
        if isinstance(spec.factory, SupervisorSpec):
            # A spec may build its own kind of supervisor (an entities region).
            make_node = getattr(spec.factory, "make_node", None)
            if make_node is not None:
                node = make_node(self.runtime, path, self)
            else:
                node = SupervisorNode(self.runtime, path, self, spec.factory)
        else:
            node = ActorCell(self.runtime, path, self, spec.mailbox)
        if self._register:
            self.runtime.register(node)
        child = _Child(spec, node)
        if self.spec.backoff is not None:
            child.backoff = BackoffState(self.spec.backoff)
        return child

    def _reset_to_spec(self) -> None:
        """Hold exactly the spec's children again (a new incarnation, OTP).

        A spec child that is still held keeps its node (path, ref, mailbox);
        one that was removed gets a new node; dynamic children are closed
        (their queued messages become dead letters) and unregistered.
        """
        held, self.children_ = self.children_, {}
        for spec in self.spec.child_specs:
            child = held.get(spec.id)
            if child is not None and child.spec is spec:
                del held[spec.id]
                if self.spec.backoff is not None:
                    child.backoff = BackoffState(self.spec.backoff)
            else:
                child = self._make_child(spec)
            self.children_[spec.id] = child
        for gone in held.values():
            self._retire(gone)

    def children(self) -> list[Node]:
        return [c.node for c in self.children_.values()]

    def _find(self, child_id: str) -> _Child:
        child = self.children_.get(child_id)
        if child is None:
            raise ActorError(f"{self.path} has no child {child_id!r}")
        return child

    def _has(self, child: _Child) -> bool:
        return self.children_.get(child.spec.id) is child

    # ------------------------------------------------------------------ lifecycle

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One incarnation: start children left to right, supervise, stop them right to left.

        Raises :class:`SupervisorFailed` when the restart intensity is
        exceeded, and a spec child's :class:`ChildStartFailed` (before
        ``task_status.started()``) when it cannot start.
        """
        self.set_state(ActorState.STARTING)
        self.intensity.reset()
        if self._incarnations:
            self._reset_to_spec()
        self._incarnations += 1
        self._stopped = trio.Event()
        send, receive = trio.open_memory_channel[Any](math.inf)
        self._send = send
        failure: ActorError | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                async with self._lock:
                    try:
                        for child in list(self.children_.values()):
                            await self._start(child, report=True)
                    except ChildStartFailed as exc:
                        # OTP: a supervisor whose child cannot start does not
                        # start either; what did start stops, right to left.
                        failure = exc
                        await self._stop_all(close=False)
                if failure is None:
                    if self.started_at is None:
                        self.started_at = trio.current_time()
                    self.set_state(ActorState.RUNNING)
                    task_status.started()
                    failure = await self._supervise(receive)
                    self.set_state(ActorState.STOPPING)
                    async with self._lock:
                        await self._stop_all(close=False)
                nursery.cancel_scope.cancel()
        finally:
            self._send = None
            self._nursery = None
            self._stopped.set()
        if failure is not None:
            # A ChildStartFailed is raised before task_status.started(): it
            # reaches whoever is starting us, who wraps it with our path.
            self.set_state(ActorState.FAILED)
            self.record_error(failure)
            raise failure

    def request_stop(self) -> None:
        if self._send is not None:
            self._send.send_nowait(_STOP)

    async def shutdown(self) -> None:
        """Stop this incarnation gracefully and wait for it (used for embedded supervisors)."""
        self.request_stop()
        await self._stopped.wait()

    def close(self) -> None:
        """Stop for good: close every descendant (their queued messages become dead letters)."""
        for child in self.children_.values():
            child.node.close()
            self._unregister(child.node)
        self.closed = True
        self.set_state(ActorState.STOPPED)
        self.stopped_at = trio.current_time()

    def _unregister(self, node: Node) -> None:
        if self._register:
            self.runtime.unregister(node)
        for sub in node.children():
            if isinstance(node, SupervisorNode):
                node._unregister(sub)

    async def _supervise(self, receive: trio.MemoryReceiveChannel[Any]) -> SupervisorFailed | None:
        async for event in receive:
            if event is _STOP:
                return None
            async with self._lock:
                if isinstance(event, _Exit):
                    failure = await self._on_exit(event)
                    if failure is not None:
                        return failure
                elif isinstance(event, _RestartDue):
                    await self._restart(event.group)
        return None  # pragma: no cover  # the channel is never closed while we read it

    # ------------------------------------------------------------------ children

    async def _start(self, child: _Child, *, report: bool = False) -> None:
        """Start a new incarnation of ``child`` and wait until it is up.

        With ``report``, a failure before it is up raises
        :class:`ChildStartFailed` here and sends no exit event; otherwise it
        arrives as an exit (a crash) like any later one.
        """
        assert self._nursery is not None
        child.incarnation += 1
        child.stopping = False
        child.running = True
        child.done = trio.Event()
        node = child.node
        if isinstance(node, ActorCell):
            node.reopen()
        node.closed = False
        # Named after the child's path: logs name the actor they come from.
        await self._nursery.start(
            self._child_task, child, child.incarnation, report, name=node.path
        )
        if child.backoff is not None:
            child.backoff.started(trio.current_time())

    async def _child_task(
        self, child: _Child, incarnation: int, report: bool, task_status: trio.TaskStatus[None]
    ) -> None:
        started = False

        def on_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        status: Any = _Status(on_started)
        node, spec = child.node, child.spec
        error: Exception | None = None
        with trio.CancelScope() as scope:
            child.scope = scope
            try:
                if isinstance(node, SupervisorNode):
                    await node.run(task_status=status)
                else:
                    assert not isinstance(spec.factory, SupervisorSpec)
                    await node.run_incarnation(
                        spec.factory, spec.args, dict(spec.kwargs), task_status=status
                    )
            except Exception as exc:
                error = _unwrap(exc)
        child.running = False
        child.done.set()
        if report and not started and error is not None:
            raise ChildStartFailed(node.path, error)
        on_started()
        if self._send is not None:
            self._send.send_nowait(_Exit(child, incarnation, error, scope.cancelled_caught))

    async def _on_exit(self, event: _Exit) -> SupervisorFailed | None:
        child = event.child
        if not self._has(child) or event.incarnation != child.incarnation:
            return None  # a child we already replaced or removed
        node, error = child.node, event.error
        if error is not None:
            node.record_error(error)
            logger.warning("%s crashed: %s: %s", node.path, type(error).__name__, error)
        terminate = getattr(node, "terminate_requested", False)
        if child.stopping and not terminate:
            return None  # we asked it to stop; whoever asked handles what follows
        restart = child.spec.restart
        if (
            terminate
            or restart is Restart.TEMPORARY
            or (restart is Restart.TRANSIENT and error is None and not event.killed)
        ):
            if terminate or restart is Restart.TEMPORARY:
                self._retire(child)
            else:
                child.node.close()
            return None
        now = trio.current_time()
        if not self.intensity.allow(now):
            return SupervisorFailed(self.path, self.spec.intensity, self.spec.period, error)
        group = self._group(child)
        for other in reversed(group):
            if other is not child and other.running:
                await self._stop_child(other, close=False)
        for other in group:
            if other.spec.restart is Restart.TEMPORARY:
                self._retire(other)  # stopped by the group, never restarted
        group = [member for member in group if self._has(member)]
        delay = child.backoff.next_delay(now) if child.backoff is not None else 0.0
        if delay > 0:
            for member in group:
                member.node.set_state(ActorState.BACKOFF)
            assert self._nursery is not None
            self._nursery.start_soon(self._restart_later, delay, tuple(group))
            return None
        await self._restart(tuple(group))
        return None

    def _group(self, child: _Child) -> list[_Child]:
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self.children_.values())
        if strategy is Strategy.REST_FOR_ONE:
            children = list(self.children_.values())
            return children[children.index(child) :]
        return [child]

    async def _restart_later(self, delay: float, group: tuple[_Child, ...]) -> None:
        await trio.sleep(delay)
        if self._send is not None:
            self._send.send_nowait(_RestartDue(group))

    async def _restart(self, group: tuple[_Child, ...]) -> None:
        now = trio.current_time()
        for child in group:  # left to right: the children list order
            if self._has(child) and not child.running:
                child.node.set_state(ActorState.RESTARTING)
                child.node.restarts += 1
                child.node.restarted_at = now
                await self._start(child)

    def _retire(self, child: _Child) -> None:
        """Close a stopped child for good and forget it."""
        child.node.close()
        if self.children_.get(child.spec.id) is child:
            del self.children_[child.spec.id]
        self._unregister(child.node)

    async def _stop_child(self, child: _Child, *, close: bool) -> None:
        """Stop one child: graceful within ``shutdown`` seconds, then cancelled."""
        if child.running and child.scope is not None:
            child.stopping = True
            child.node.set_state(ActorState.STOPPING)
            shutdown = child.spec.shutdown
            if shutdown == 0:
                child.scope.cancel()
            else:
                child.node.request_stop()
                with trio.move_on_after(math.inf if shutdown is None else shutdown):
                    await child.done.wait()
                if not child.done.is_set():
                    logger.warning(
                        "%s did not stop within %ss; cancelling", child.node.path, shutdown
                    )
                    child.scope.cancel()
            await child.done.wait()
        if close:
            child.node.close()
        elif child.node.state is ActorState.STOPPING:
            child.node.set_state(ActorState.STOPPED)

    async def _stop_all(self, *, close: bool) -> None:
        for child in reversed(self.children_.values()):
            await self._stop_child(child, close=close)

    # ------------------------------------------------------------------ dynamic children

    async def start_child(self, spec: ChildSpec | SupervisorSpec) -> AnyRef:
        from ._spec import as_child_spec

        spec = as_child_spec(spec)
        async with self._lock:
            # Not while starting or stopping either: a child added to an
            # incarnation that is ending would be closed at once.
            if self._nursery is None or self.state is not ActorState.RUNNING:
                raise ActorError(f"{self.path} is not running")
            if spec.id in self.children_:
                raise InvalidConfig("id", f"{self.path} already has a child {spec.id!r}")
            child = self._make_child(spec)
            self.children_[spec.id] = child
            try:
                await self._start(child, report=True)
            except ChildStartFailed:
                self._retire(child)
                raise
            return child.node.ref

    async def terminate_child(self, child_id: str) -> None:
        async with self._lock:
            child = self._find(child_id)
            await self._stop_child(child, close=False)
            self._retire(child)

    async def restart_child(self, child_id: str) -> None:
        """Restart a child now (an operator's restart): stop it gracefully, start it again.

        Whatever its restart type, the child gets a new incarnation with its
        mailbox intact.  Not counted against the restart intensity: nothing failed.
        """
        async with self._lock:
            child = self._find(child_id)
            await self._stop_child(child, close=False)
            child.node.restarts += 1
            child.node.restarted_at = trio.current_time()
            child.node.set_state(ActorState.RESTARTING)
            await self._start(child)

    def which_children(self) -> list[ChildInfo]:
        return [
            ChildInfo(c.spec.id, c.node.ref, c.node.kind, c.node.state.value)
            for c in self.children_.values()
        ]

    def count_children(self) -> dict[str, int]:
        sups = sum(1 for c in self.children_.values() if isinstance(c.node, SupervisorNode))
        return {
            "specs": len(self.children_),
            "active": sum(1 for c in self.children_.values() if c.running),
            "supervisors": sups,
            "workers": len(self.children_) - sups,
        }

    def statistics(self) -> SupervisorStatistics:
        spec, error = self.spec, self.last_error
        return SupervisorStatistics(
            path=self.path,
            state=self.state.value,
            strategy=spec.strategy.value,
            intensity=spec.intensity,
            period=spec.period,
            restarts=self.restarts,
            restarts_in_period=self.intensity.recent(trio.current_time()),
            children=len(self.children_),
            active=sum(1 for c in self.children_.values() if c.running),
            last_error=None if error is None else f"{type(error).__name__}: {error}",
        )

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        spec = self.spec
        snap["strategy"] = spec.strategy.value
        snap["intensity"] = spec.intensity
        snap["period"] = spec.period
        snap["restarts_in_period"] = self.intensity.recent(trio.current_time())
        return snap


class _NodeRef(Generic[_N]):
    """What every ref to a supervisor-like node shares: identity, ``stop``, the children views.

    Its subclasses differ in what they take: a :class:`SupervisorRef` no
    messages (they are dead-lettered), an
    :class:`~triotok.supervision.EntitiesRef` commands by entity key.
    """

    __slots__ = ("_node",)

    def __init__(self, node: _N) -> None:
        self._node = node

    @property
    def path(self) -> str:
        return self._node.path

    @property
    def name(self) -> str:
        return self._node.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._node.path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NodeRef) and other._node is self._node

    def __hash__(self) -> int:
        return hash(self._node.path)

    async def stop(self) -> None:
        """Stop the node and its subtree for good; wait until they stopped.

        Stopping a stopped node, or one no supervisor holds (the root: use
        ``system.stop()``), does nothing.
        """
        node = self._node
        parent = node.parent
        if not isinstance(parent, SupervisorNode) or node.closed:
            await trio.lowlevel.checkpoint()
            return
        await parent.terminate_child(node.name)

    def which_children(self) -> list[ChildInfo]:
        """One :class:`ChildInfo` per child, in start order."""
        return self._node.which_children()

    def count_children(self) -> dict[str, int]:
        """``specs``, ``active``, ``supervisors`` and ``workers`` (OTP ``count_children``)."""
        return self._node.count_children()


class SupervisorRef(_NodeRef["SupervisorNode"]):
    """A stable reference to a supervisor: child management, not a mailbox.

    A supervisor takes no messages of its own: :meth:`tell` and :meth:`send`
    make the message a dead letter (reason ``no_recipient``) and :meth:`ask`
    raises :class:`~triotok.actors.ActorError`, so code holding an actor's or
    a supervisor's ref may call them without checking the kind first.
    :meth:`statistics` returns a frozen :class:`SupervisorStatistics`.

    ::

        sup = await system.spawn_supervisor(SupervisorSpec("workers"))
        worker = await sup.start_child(ChildSpec("w1", Worker))
        assert sup.statistics().children == 1
    """

    __slots__ = ()

    # ------------------------------------------------------------------ messages

    def tell(self, message: Any) -> None:
        """Dead-letter ``message`` (``no_recipient``): a supervisor takes no messages."""
        self._node.runtime.dead_letters.post(message, self.path, DeadLetterReason.NO_RECIPIENT)

    async def send(self, message: Any) -> None:
        """Like :meth:`tell`: the message becomes a dead letter."""
        self.tell(message)
        await trio.lowlevel.checkpoint()

    async def ask(self, message: Any, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109  # ActorRef.ask's signature
        """Raise :class:`~triotok.actors.ActorError`: a supervisor has nothing to reply."""
        await trio.lowlevel.checkpoint()
        raise ActorError(f"{self.path} is a supervisor; it takes no messages")

    def statistics(self) -> SupervisorStatistics:
        """A frozen snapshot of the supervisor's state, restarts and children."""
        return self._node.statistics()

    # ------------------------------------------------------------------ children

    async def start_child(self, spec: ChildSpec | SupervisorSpec) -> AnyRef:
        """Add and start a child (OTP ``start_child``); returns its ref once it is up.

        Raises :class:`ChildStartFailed` (nothing kept, nothing counted) when
        the child's factory or ``on_start`` raises.  The child lasts until it
        is removed or this supervisor restarts (which starts its spec only).
        """
        return await self._node.start_child(spec)

    async def restart_child(self, child_id: str) -> None:
        """Stop a child gracefully and start a new incarnation (keeps its mailbox)."""
        await self._node.restart_child(child_id)

    async def terminate_child(self, child_id: str) -> None:
        """Stop a child and remove it (OTP ``terminate_child`` + ``delete_child``)."""
        await self._node.terminate_child(child_id)


def _unwrap(exc: Exception) -> Exception:
    """A nursery wraps a single failure in an ExceptionGroup; report the failure itself."""
    leaf = single_leaf(exc)
    return leaf if isinstance(leaf, Exception) else exc
