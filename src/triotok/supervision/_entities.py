"""The entities engine: a supervisor of on-demand entity actors, one per entity key.

``Entities(name, factory=...)`` (``_entity_spec.py``) is a :class:`SupervisorSpec` whose node is an
:class:`EntitiesNode` (a *region*).  ``await region.ask(key, command)``
activates the entity of ``key`` if needed (a fresh ``factory(key)`` whose
``on_start`` loads its state) and delivers the command to its mailbox.  Idle
entities are passivated after ``idle`` seconds and least recently used first
beyond ``max_active``; the bookkeeping is the sans-I/O
:class:`~triotok.supervision._passivation.PassivationPolicy`.

Invariants:

- one :class:`EntityCell` per key on this node, held in ``_entities`` from
  its activation until its task ends; every command for the key is queued in
  that cell, and a cell runs one incarnation at a time, so commands to one
  entity are handled one at a time, in arrival order, by one activation;
- a cell leaves ``_entities`` only from its own task, after an incarnation
  ended and with nothing queued, with no checkpoint between that check and
  the removal.  A command arriving while its entity passivates is therefore
  queued in the same cell and handed to the next incarnation: never lost,
  never reordered, never handled by two activations at once;
- only a parked entity (waiting for a message, nothing queued) is passivated
  for idleness or to make room: a busy one is deferred (touched), so
  ``max_active`` is a soft limit while more entities than that are busy;
- an entity's failure never escapes its task: a crash restarts it (its state
  reloaded by ``on_start``), more than ``intensity`` crashes in ``period``
  seconds poison its key (typed :class:`EntityPoisoned` until an operator
  restarts it); the region itself does not go down because of one entity;
- a :class:`ConflictError` raised by a handler (a stale ``version``) is not a
  crash: the state is reloaded and that command retried once, first in the
  queue; a second conflict answers :class:`EntityConflict`;
- an entity incarnation whose ``on_start`` did not use ``ctx.nursery`` (nor
  ``ctx.start_soon`` / ``ctx.spawn``) serves without a nursery, which keeps a
  parked entity under 5 KB.  Using it later raises :class:`ActorError` in that
  handler and marks the region, whose later incarnations all keep theirs.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import (
    ActorError,
    ActorStopped,
    ConflictError,
    EntityConflict,
    EntityPoisoned,
    InvalidConfig,
)
from ..actors import ActorState, ActorStatistics, DeadLetterReason
from ..actors.lowlevel import ActorCell, AskRequest, Node, percentile
from ._entity_spec import Entities, entity_name
from ._intensity import RestartIntensity
from ._passivation import PassivationPolicy
from ._spec import ChildSpec, SupervisorSpec
from ._supervisor import AnyRef, ChildInfo, SupervisorNode, _NodeRef

if TYPE_CHECKING:
    from ..actors.lowlevel import Runtime

__all__ = ("EntitiesNode", "EntitiesRef", "EntitiesStatistics", "EntityCell")

logger = logging.getLogger("triotok.entities")

#: Entities looked at per trim beyond the excess (busy ones are skipped).
_TRIM_SCAN = 8
#: When every LRU candidate was busy, look again after this many seconds.
_TRIM_RETRY = 0.05


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True, slots=True)
class EntitiesStatistics:
    """A point-in-time view of a region; latencies are seconds of handling time.

    ``active`` counts entities not passivating; ``mailbox_depth`` is the sum
    over them; ``restarts`` are crash restarts; ``reloads`` are restarts
    after a conflict; ``conflicts`` are commands answered ``EntityConflict``.
    """

    path: str
    state: str
    active: int
    passivating: int
    poisoned: int
    max_active: int
    activations: int
    passivations: int
    idle_passivations: int
    lru_passivations: int
    operator_passivations: int
    commands: int
    restarts: int
    reloads: int
    conflicts: int
    mailbox_depth: int
    latency_p50: float | None
    latency_p99: float | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


# --------------------------------------------------------------------------- entity cell


class EntityCell(ActorCell):
    """The cell of one active entity: an actor cell that knows its key and region.

    Lighter than a plain cell: slots, the control lane is a list, the latency
    samples go to the region's shared ring (per-entity latency is not kept)
    and an incarnation serves without a nursery unless ``on_start`` used it.
    """

    __slots__ = (
        "crashes",
        "done",
        "key",
        "passivating",
        "region",
        "reload",
        "restart_requested",
        "retried",
    )

    def __init__(self, region: EntitiesNode, key: Hashable, path: str) -> None:
        super().__init__(region.runtime, path, region, region.entities_spec.mailbox)
        self.key = key
        self.region = region
        self.latencies = region.latencies
        # Only appended, cleared and tested for emptiness by the cell.
        self.control = []  # type: ignore[assignment]  # a list is 56 bytes, a deque 600
        self.passivating = False
        #: The incarnation ended on a conflict: reload (restart) without counting a crash.
        self.reload = False
        #: The command being retried after a conflict (retried once).
        self.retried: Any = None
        self.restart_requested = False
        self.crashes: RestartIntensity | None = None
        #: Set (and dropped) when the current incarnation ends; made on demand.
        self.done: trio.Event | None = None

    def serves_bare(self) -> bool:
        return not self.region.nursery_needed

    def missing_nursery(self) -> Exception:
        self.region.nursery_needed = True
        return super().missing_nursery()

    def _crashed(self, item: Any, error: Exception) -> None:
        if not isinstance(error, ConflictError) or isinstance(error, EntityConflict):
            super()._crashed(item, error)
            return
        self.reload = True
        if item is not self.retried:
            self.retried = item
            self.queue.appendleft(item)  # first for the reloaded incarnation
            return
        self.retried = None
        self.region.conflicts += 1
        conflict = EntityConflict(self.path, self.key, error)
        if type(item) is AskRequest and not item.is_tell:
            item.fail(conflict)
        else:  # a tell: nobody to answer
            message = item.message if type(item) is AskRequest else item
            self.runtime.dead_letters.post(message, self.path, DeadLetterReason.CRASHED, conflict)

    def statistics(self) -> ActorStatistics:
        error = self.last_error
        return ActorStatistics(
            path=self.path,
            state=self.state.value,
            mailbox_depth=len(self.queue),
            capacity=self.capacity,
            high_water_mark=self.high_water_mark,
            processed=self.processed,
            failed=self.failed,
            dropped=self.dropped,
            restarts=self.restarts,
            last_error=None if error is None else f"{type(error).__name__}: {error}",
            latency_p50=None,
            latency_p99=None,
        )

    def snapshot(self) -> dict[str, Any]:
        snap = Node.snapshot(self)
        snap["key"] = repr(self.key)
        snap["statistics"] = self.statistics().as_dict()
        return snap

    def _wake_waiters(self) -> None:
        done, self.done = self.done, None
        if done is not None:
            done.set()


# --------------------------------------------------------------------------- region


class EntitiesNode(SupervisorNode):
    """The region: activates, passivates and supervises the entities of one spec."""

    def __init__(self, runtime: Runtime, path: str, parent: Node | None, spec: Entities) -> None:
        super().__init__(runtime, path, parent, spec)
        self.entities_spec = spec
        self.latencies: deque[float] = deque(maxlen=1024)
        #: An entity used ``ctx.nursery`` after ``on_start``: incarnations keep theirs.
        self.nursery_needed = False
        self._entities: dict[Hashable, EntityCell] = {}
        self._poisoned: dict[Hashable, EntityCell] = {}
        self._policy: PassivationPolicy[Hashable] = PassivationPolicy(
            idle=spec.idle, max_active=spec.max_active
        )
        self._name_of = spec.name_of or entity_name
        self._nursery_: trio.Nursery | None = None
        self._timer: trio.CancelScope | None = None
        self._retrim_at = math.inf
        self._running = False
        self._stopping = False
        self.activations = 0
        self.passivations = 0
        self.idle_passivations = 0
        self.lru_passivations = 0
        self.operator_passivations = 0
        self.commands = 0
        self.entity_restarts = 0
        self.reloads = 0
        self.conflicts = 0

    def _make_ref(self) -> EntitiesRef:
        return EntitiesRef(self)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One incarnation of the region: serve until stopped, then passivate every entity."""
        self.set_state(ActorState.STARTING)
        self._stopped = trio.Event()
        self._stopping = False
        self._forget_poisoned()  # a restarted region starts afresh
        try:
            async with trio.open_nursery() as nursery:
                self._nursery_ = nursery
                self._running = True
                if self.started_at is None:
                    self.started_at = trio.current_time()
                self.set_state(ActorState.RUNNING)
                task_status.started()
                await self._timer_loop()
                self.set_state(ActorState.STOPPING)
                self._running = False
                # Each entity finishes its current command and stops; the
                # nursery waits for their on_stop.
                for cell in list(self._entities.values()):
                    self._passivate(cell)
        finally:
            self._running = False
            self._stopping = True
            self._nursery_ = None
            for cell in list(self._entities.values()):  # only when cancelled
                self._retire_entity(cell)
            self._stopped.set()

    def request_stop(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()

    def close(self) -> None:
        self._forget_poisoned()
        self.closed = True
        self.set_state(ActorState.STOPPED)
        self.stopped_at = trio.current_time()

    def _forget_poisoned(self) -> None:
        for cell in self._poisoned.values():
            self.runtime.unregister(cell)
        self._poisoned.clear()

    async def _timer_loop(self) -> None:
        while not self._stopping:
            with trio.CancelScope(deadline=self._deadline()) as scope:
                self._timer = scope
                await trio.sleep_forever()
            self._timer = None
            if not self._stopping:
                self._expire(trio.current_time())

    def _deadline(self) -> float:
        return min(self._policy.next_deadline(), self._retrim_at)

    def _arm_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            deadline = self._deadline()
            if deadline < timer.deadline:
                timer.deadline = deadline

    def _expire(self, now: float) -> None:
        policy, entities = self._policy, self._entities
        while (key := policy.idle_key(now)) is not None:
            cell = entities[key]
            if cell.waiter is not None and not cell.queue:
                self.idle_passivations += 1
                self._passivate(cell)
            else:  # busy for longer than idle: not idle
                policy.touched(key, now)
        if self._retrim_at <= now:
            self._retrim_at = math.inf
            self._trim(now)

    # ------------------------------------------------------------------ activation

    def _activate(self, key: Hashable) -> EntityCell:
        nursery = self._nursery_
        if nursery is None or not self._running:
            raise ActorStopped(self.path)
        poisoned = self._poisoned.get(key)
        if poisoned is not None:
            raise self._poison_error(poisoned)
        name = self._name_of(key)
        if not isinstance(name, str) or not name or "/" in name:
            raise InvalidConfig("name_of", f"gave {name!r} for {key!r}: not a path segment")
        path = f"{self.path}/{name}"
        if path in self.runtime.registry:
            raise InvalidConfig("key", f"{key!r} has the path {path} of another entity")
        cell = EntityCell(self, key, path)
        self.runtime.register(cell)
        self._entities[key] = cell
        self._activated(cell)
        nursery.start_soon(self._run_entity, cell, name=path)  # else a new name string each
        return cell

    def _activated(self, cell: EntityCell) -> None:
        self.activations += 1
        now = trio.current_time()
        self._policy.activated(cell.key, now)
        self._trim(now)
        self._arm_timer()

    def _trim(self, now: float) -> None:
        """Passivate least recently used idle entities beyond ``max_active``."""
        policy, entities = self._policy, self._entities
        scans = policy.excess()
        if not scans:
            return
        scans += _TRIM_SCAN
        while scans and policy.excess():
            scans -= 1
            key = policy.oldest()
            cell = entities[key]
            if cell.waiter is not None and not cell.queue:
                self.lru_passivations += 1
                self._passivate(cell)
            else:
                policy.touched(key, now)
        if policy.excess():
            self._retrim_at = min(self._retrim_at, now + _TRIM_RETRY)

    def _passivate(self, cell: EntityCell) -> None:
        if cell.passivating:
            return
        cell.passivating = True
        self._policy.removed(cell.key)
        if cell.task is not None:  # else the entity's task sees the flag before starting
            cell.request_stop()

    async def _run_entity(self, cell: EntityCell) -> None:
        factory, key = self.entities_spec.factory, cell.key
        try:
            while not self._stopping:
                if cell.passivating:
                    if not cell.queue:
                        break
                    self._reactivate(cell)
                error: Exception | None = None
                try:
                    await cell.run_incarnation(factory, (key,), {})
                except Exception as exc:
                    error = exc
                # No checkpoint from here to the next incarnation or the end
                # (see the module invariants).
                if self._is_stopping():
                    break
                now = trio.current_time()
                if cell.restart_requested:
                    cell.restart_requested = False
                    self._restarted(cell, now)
                elif error is not None and cell.reload:
                    cell.reload = False
                    self.reloads += 1
                    self._restarted(cell, now)
                elif error is not None:
                    if not self._crashed(cell, error, now):
                        return
                elif cell.queue:  # passivated (or stopped itself) with commands waiting
                    if cell.passivating:
                        self._reactivate(cell)
                    else:
                        self._restarted(cell, now)
                else:
                    break
        finally:
            self._retire_entity(cell)

    def _is_stopping(self) -> bool:
        return self._stopping  # a call: mypy would keep the loop condition's narrowing

    def _reactivate(self, cell: EntityCell) -> None:
        cell.passivating = False
        cell._wake_waiters()
        self._activated(cell)

    def _restarted(self, cell: EntityCell, now: float) -> None:
        cell.restarts += 1
        cell.restarted_at = now
        cell.set_state(ActorState.RESTARTING)
        cell._wake_waiters()

    def _crashed(self, cell: EntityCell, error: Exception, now: float) -> bool:
        """Record a crash; restart (True) or poison the key (False)."""
        spec = self.entities_spec
        cell.record_error(error)
        logger.warning("%s crashed: %s: %s", cell.path, type(error).__name__, error)
        if cell.crashes is None:
            cell.crashes = RestartIntensity(spec.intensity, spec.period)
        if cell.crashes.allow(now):
            self.entity_restarts += 1
            self._restarted(cell, now)
            return True
        self._poison(cell)
        return False

    def _poison(self, cell: EntityCell) -> None:
        key = cell.key
        del self._entities[key]
        self._policy.removed(key)
        self._poisoned[key] = cell
        cell.accepting = False
        cell.closed = True
        queue, cell.queue = cell.queue, deque()
        for item in queue:
            error = self._poison_error(cell)
            message = item
            if type(item) is AskRequest:
                item.fail(error)
                message = item.message
            self.runtime.dead_letters.post(message, cell.path, DeadLetterReason.STOPPED, error)
        cell.room.unpark_all()
        cell.set_state(ActorState.FAILED)
        cell.stopped_at = trio.current_time()
        logger.error("%s is poisoned: %s", cell.path, cell.last_error)

    def _poison_error(self, cell: EntityCell) -> EntityPoisoned:
        crashes = self.entities_spec.intensity + 1
        return EntityPoisoned(cell.path, cell.key, crashes, cell.last_error)

    def _retire_entity(self, cell: EntityCell) -> None:
        """The entity's task ended: forget the cell (a poisoned one stays listed)."""
        key = cell.key
        if self._entities.get(key) is cell:
            del self._entities[key]
            self._policy.removed(key)
            self.passivations += 1
        cell._wake_waiters()
        if self._poisoned.get(key) is cell:
            return
        cell.close()  # anything still queued (the region stopping) is dead-lettered
        self.runtime.unregister(cell)

    # ------------------------------------------------------------------ operators

    async def passivate(self, key: Hashable) -> bool:
        """Passivate ``key``'s entity now and wait until its incarnation ended.

        Commands already queued are handed to a new activation.  Returns
        ``False`` when the entity is not active.
        """
        cell = self._entities.get(key)
        if cell is None or cell.passivating:
            await trio.lowlevel.checkpoint()
            return False
        self.operator_passivations += 1
        self._passivate(cell)
        await self._wait_incarnation(cell)
        return True

    async def restart(self, key: Hashable) -> None:
        """Restart ``key``'s entity (reload its state), or lift its poisoning."""
        poisoned = self._poisoned.pop(key, None)
        if poisoned is not None:
            self.runtime.unregister(poisoned)
            logger.info("%s: poisoning lifted by an operator", poisoned.path)
            await trio.lowlevel.checkpoint()
            return
        cell = self._entities.get(key)
        if cell is None or cell.task is None:
            await trio.lowlevel.checkpoint()
            return
        cell.restart_requested = True
        cell.request_stop()
        await self._wait_incarnation(cell)

    async def _wait_incarnation(self, cell: EntityCell) -> None:
        if cell.done is None:
            cell.done = trio.Event()
        await cell.done.wait()

    def _cell_named(self, name: str) -> EntityCell:
        node = self.runtime.registry.get(f"{self.path}/{name}")
        if not isinstance(node, EntityCell) or node.region is not self:
            raise ActorError(f"{self.path} has no entity {name!r}")
        return node

    async def start_child(self, spec: ChildSpec | SupervisorSpec) -> AnyRef:
        raise ActorError(f"{self.path} is an entities region: entities start with their commands")

    async def restart_child(self, child_id: str) -> None:
        """``system.restart(path)`` of an entity: restart it, or lift its poisoning."""
        await self.restart(self._cell_named(child_id).key)

    async def terminate_child(self, child_id: str) -> None:
        """``system.stop_actor(path)`` of an entity: passivate it (a command reactivates it)."""
        await self.passivate(self._cell_named(child_id).key)

    # ------------------------------------------------------------------ views

    def children(self) -> list[Node]:
        return [*self._entities.values(), *self._poisoned.values()]

    def which_children(self) -> list[ChildInfo]:
        cells = [*self._entities.values(), *self._poisoned.values()]
        return [ChildInfo(c.name, c.ref, c.kind, c.state.value) for c in cells]

    def count_children(self) -> dict[str, int]:
        total = len(self._entities) + len(self._poisoned)
        return {"specs": total, "active": len(self._policy), "supervisors": 0, "workers": total}

    def active_keys(self) -> list[Hashable]:
        """Keys of the active (not passivating) entities, least recently used first."""
        return self._policy.keys()

    def poisoned_keys(self) -> list[Hashable]:
        return list(self._poisoned)

    def path_of(self, key: Hashable) -> str:
        """The path ``key``'s entity has (or will have) in the tree."""
        return f"{self.path}/{self._name_of(key)}"

    def region_statistics(self) -> EntitiesStatistics:
        samples = sorted(self.latencies)
        active = len(self._policy)
        return EntitiesStatistics(
            path=self.path,
            state=self.state.value,
            active=active,
            passivating=len(self._entities) - active,
            poisoned=len(self._poisoned),
            max_active=self.entities_spec.max_active,
            activations=self.activations,
            passivations=self.passivations,
            idle_passivations=self.idle_passivations,
            lru_passivations=self.lru_passivations,
            operator_passivations=self.operator_passivations,
            commands=self.commands,
            restarts=self.entity_restarts,
            reloads=self.reloads,
            conflicts=self.conflicts,
            mailbox_depth=sum(len(c.queue) for c in self._entities.values()),
            latency_p50=percentile(samples, 50),
            latency_p99=percentile(samples, 99),
        )

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["entities"] = {"idle": self.entities_spec.idle, "max_active": self._policy.max_active}
        snap["statistics"] = self.region_statistics().as_dict()
        return snap


class EntitiesRef(_NodeRef["EntitiesNode"]):
    """The handle on a region: ``ask``/``tell`` by entity key, operators' actions, statistics.

    Not a :class:`SupervisorRef`: a region takes commands addressed to an
    entity key, so its ``ask``/``tell`` take ``(key, command)`` where a
    supervisor's take a message, and :meth:`statistics` is the region's own
    :class:`EntitiesStatistics`. Both share ``path``, ``name``, ``stop``,
    ``which_children`` and ``count_children``.

    ::

        region = await system.spawn_entities(Entities("carts", factory=Cart))
        await region.ask(("acme", cart_id), AddItem(sku, 2))
    """

    __slots__ = ()

    def _entity(self, key: Hashable) -> EntityCell:
        region = self._node
        cell = region._entities.get(key)
        if cell is None:
            cell = region._activate(key)
        elif not cell.passivating:
            region._policy.touched(key, trio.current_time())
        region.commands += 1
        return cell

    async def ask(self, key: Hashable, command: Any, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109  # as ActorRef.ask
        """Deliver ``command`` to ``key``'s entity (activating it) and return its reply.

        Raises what :meth:`ActorRef.ask` raises (``AskTimeout``,
        ``ActorCrashed`` when the command crashed the entity, ``ActorStopped``
        when the region is stopped, ``MailboxFull``), plus
        :class:`EntityPoisoned` for a poisoned key and :class:`EntityConflict`
        when a write still conflicts after a reload and a retry.
        """
        return await self._entity(key).ref.ask(command, timeout=timeout)

    def tell(self, key: Hashable, command: Any) -> None:
        """Queue ``command`` for ``key``'s entity without waiting (see ``ActorRef.tell``)."""
        self._entity(key).ref.tell(command)

    async def passivate(self, key: Hashable) -> bool:
        """Passivate ``key``'s entity now; ``False`` if it was not active."""
        return await self._node.passivate(key)

    async def restart(self, key: Hashable) -> None:
        """Restart ``key``'s entity (reloading its state), or lift its poisoning."""
        await self._node.restart(key)

    def active_keys(self) -> list[Hashable]:
        """Active keys, least recently used first."""
        return self._node.active_keys()

    def poisoned_keys(self) -> list[Hashable]:
        """Keys refused with :class:`EntityPoisoned` until restarted."""
        return self._node.poisoned_keys()

    def path_of(self, key: Hashable) -> str:
        """The tree path of ``key``'s entity."""
        return self._node.path_of(key)

    def statistics(self) -> EntitiesStatistics:
        """A frozen snapshot of the region's counters."""
        return self._node.region_statistics()
