"""The actor cell: mailbox, control lane and the message loop of one actor.

The cell outlives the incarnations of its actor.  Its loop drains the mailbox
in batches of up to ``BATCH`` messages with no trio checkpoint between them
(a checkpoint per message would cost a scheduler round trip); after a full
batch it checkpoints so other tasks run and cancellation is seen.  A control
signal (stop) is checked between messages and never waits behind user
messages.

Each incarnation opens a nursery for ``on_start`` (``ctx.nursery``).  A plain
cell serves inside it; a cell whose :meth:`ActorCell.serves_bare` says so
(an entity cell) closes it again when ``on_start`` did not touch it and
serves without one, since a parked nursery costs more than a kilobyte.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from .._exceptions import ActorError, ActorStopped, MailboxFull
from ._ask import AskRequest
from ._deadletters import DeadLetterReason
from ._mailbox import Mailbox, Overflow
from ._node import Node
from ._stats import ActorState, ActorStatistics, percentile

if TYPE_CHECKING:
    from ._actor import Actor
    from ._ref import ActorRef
    from ._runtime import Runtime

__all__ = ("BATCH", "ActorCell")

logger = logging.getLogger("triotok.actors")

#: Messages handled back to back before the loop yields to other tasks.
BATCH = 256
#: Handling latency is sampled on one message in ``SAMPLE_EVERY``.
SAMPLE_EVERY = 8
_STOP = "stop"


class ActorCell(Node):
    """Runtime state of one actor path; see the module docstring."""

    kind = "actor"

    __slots__ = (
        "_room",
        "accepting",
        "actor",
        "blocked",
        "capacity",
        "child_supervisor",
        "control",
        "dropped",
        "failed",
        "high_water_mark",
        "latencies",
        "overflow",
        "processed",
        "queue",
        "ref",
        "task",
        "terminate_requested",
        "waiter",
    )

    def __init__(self, runtime: Runtime, path: str, parent: Node | None, mailbox: Mailbox) -> None:
        super().__init__(runtime, path, parent)
        from ._ref import ActorRef, TracedActorRef  # the ref and the cell refer to each other

        self.queue: deque[Any] = deque()
        self.capacity = mailbox.capacity
        self.overflow = mailbox.overflow
        self.accepting = True
        self.control: deque[str] = deque()
        self.waiter: Task | None = None
        self.blocked = 0
        self._room: trio.lowlevel.ParkingLot | None = None
        self.high_water_mark = 0
        self.processed = 0
        self.failed = 0
        self.dropped = 0
        self.latencies: deque[float] = deque(maxlen=256)
        self.actor: Actor | None = None
        capture = runtime.context_capture
        self.ref: ActorRef = ActorRef(self) if capture is None else TracedActorRef(self, capture)
        #: The task running the current incarnation (None between incarnations).
        self.task: Task | None = None
        #: Set when the actor stopped itself for good via ``ref.stop()``.
        self.terminate_requested = False
        #: Supervisor of children spawned with ``ctx.spawn`` (from the layer above).
        self.child_supervisor: Any = None

    @property
    def room(self) -> trio.lowlevel.ParkingLot:
        """Where senders wait for room in a full ``BLOCK`` mailbox (made on first use)."""
        room = self._room
        if room is None:
            room = self._room = trio.lowlevel.ParkingLot()
        return room

    def serves_bare(self) -> bool:
        """Whether an incarnation serves without a nursery when ``on_start`` left it unused."""
        return False

    def missing_nursery(self) -> Exception:
        """The error for ``ctx.nursery`` used by an incarnation serving without one."""
        return ActorError(
            f"{self.path}: this incarnation serves without a nursery (on_start did not use "
            "ctx.nursery); use it from on_start"
        )

    # ------------------------------------------------------------------ enqueue

    def wake(self) -> None:
        task = self.waiter
        if task is not None:
            self.waiter = None
            reschedule(task)

    def enqueue_full(self, item: Any, *, raise_on_block: bool) -> None:
        """Apply the overflow policy to ``item`` arriving at a full or closed mailbox."""
        if not self.accepting:
            self._reject_stopped(item)
            return
        overflow = self.overflow
        if overflow is Overflow.DROP_OLD:
            oldest = self.queue.popleft()
            self._drop(oldest, DeadLetterReason.DROPPED_OLDEST)
            self.queue.append(item)
            self.wake()
        elif overflow is Overflow.DROP_NEW:
            self._drop(item, DeadLetterReason.MAILBOX_FULL)
        elif overflow is Overflow.FAIL or raise_on_block:
            raise MailboxFull(self.path, self.capacity)

    def _drop(self, item: Any, reason: DeadLetterReason) -> None:
        self.dropped += 1
        error = MailboxFull(self.path, self.capacity)
        if type(item) is AskRequest:
            item.fail(error)
            self.runtime.dead_letters.post(item.message, self.path, reason, error)
        else:
            self.runtime.dead_letters.post(item, self.path, reason, error)

    def _reject_stopped(self, item: Any) -> None:
        error = ActorStopped(self.path)
        if type(item) is AskRequest:
            item.fail(error)
            item = item.message
        self.runtime.dead_letters.post(item, self.path, DeadLetterReason.STOPPED, error)

    def close(self) -> None:
        """Stop for good: refuse new messages, dead-letter the queued ones."""
        self.accepting = False
        self.closed = True
        queue, self.queue = self.queue, deque()
        for item in queue:
            self._reject_stopped(item)
        if self._room is not None:
            self._room.unpark_all()
        self.set_state(ActorState.STOPPED)
        self.stopped_at = trio.current_time()

    def reopen(self) -> None:
        self.accepting = True
        self.closed = False

    def request_stop(self) -> None:
        self.control.append(_STOP)
        self.wake()

    # ------------------------------------------------------------------ the loop

    async def run_incarnation(
        self,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Create the actor, run ``on_start``, serve until stopped, run ``on_stop``.

        An exception from the factory, a hook or a handler propagates to the
        supervisor (after ``on_stop``); cancellation propagates at once.
        """
        from ._actor import Actor, ActorContext

        self.control.clear()
        self.task = current_task()
        self.set_state(ActorState.STARTING)
        error: Exception | None = None
        actor: Actor | None = None
        started = False
        bare = False  # on_start left the nursery unused: serve after closing it
        async with trio.open_nursery() as nursery:
            try:
                actor = factory(*args, **kwargs)
                if not isinstance(actor, Actor):
                    raise TypeError(f"{factory!r} returned {actor!r}, not an Actor")
                ctx = actor.ctx = ActorContext(self, nursery)
                self.actor = actor
                await actor.on_start()
                started = True
                now = trio.current_time()
                if self.started_at is None:
                    self.started_at = now
                self.set_state(ActorState.RUNNING)
                task_status.started()
                if ctx.nursery_used or not self.serves_bare():
                    await self._serve(actor)
                else:
                    ctx.release_nursery()
                    bare = True
            except Exception as exc:
                error = exc
            if started and actor is not None and not bare:
                await self._stop_children()
                await self._stop_actor(actor, error)
            nursery.cancel_scope.cancel()
        if bare and actor is not None:
            # Nothing ran in the nursery and nothing can start in it now, so
            # serving outside it changes no cancellation or failure path.
            del nursery  # with its cancel scope: what serving bare saves
            try:
                await self._serve(actor)
            except Exception as exc:
                error = exc
            await self._stop_actor(actor, error)
        self.actor = None
        self.task = None
        if error is not None:
            raise error

    async def _stop_children(self) -> None:
        """Children spawned by this incarnation stop (for good) before it does."""
        sup, self.child_supervisor = self.child_supervisor, None
        if sup is not None:
            await sup.shutdown()
            sup.close()

    async def _stop_actor(self, actor: Actor, error: Exception | None) -> None:
        self.set_state(ActorState.STOPPING)
        try:
            await actor.on_stop()
        except Exception as exc:  # keep the original crash as the reported cause
            logger.exception("%s: on_stop failed", self.path)
            if error is None:
                raise
            self.record_error(exc)

    def _abort_park(self, raise_cancel: Any) -> Abort:
        self.waiter = None
        return Abort.SUCCEEDED

    async def _serve(self, actor: Actor) -> None:
        queue, control, latencies = self.queue, self.control, self.latencies
        receive = actor.receive
        abort_park = self._abort_park
        while not control:
            if not queue:
                # Parked inline, not in a helper coroutine: an actor fed one
                # message at a time parks after every message.
                self.waiter = current_task()
                await wait_task_rescheduled(abort_park)
                continue
            handled = 0
            # Sample on the cell's running count, not the batch's: an actor fed
            # one message per batch would otherwise time every message.
            base = self.processed
            item: Any = None
            try:
                while queue:
                    item = queue.popleft()
                    if self.blocked:
                        self.room.unpark()
                    if (base + handled) % SAMPLE_EVERY:
                        if type(item) is AskRequest:
                            if item.context is None:
                                item.reply(await receive(item.message))
                            else:
                                await self._handle_traced(receive, item)
                        else:
                            await receive(item)
                    else:
                        started = perf_counter()
                        if type(item) is AskRequest:
                            if item.context is None:
                                item.reply(await receive(item.message))
                            else:
                                await self._handle_traced(receive, item)
                        else:
                            await receive(item)
                        latencies.append(perf_counter() - started)
                    handled += 1
                    if handled >= BATCH or control:
                        break
            except Exception as exc:
                self.processed += handled
                self._crashed(item, exc)
                raise
            except BaseException:
                # Cancelled mid-message (shutdown timeout): the message was not handled.
                self.processed += handled
                self._reject_stopped(item)
                raise
            self.processed += handled
            item = None  # a parked cell keeps no reference to its last request
            if handled >= BATCH:
                await trio.lowlevel.checkpoint()

    async def _handle_traced(self, receive: Callable[[Any], Any], item: AskRequest) -> None:
        """A message sent with a context: handled under ``runtime.message_hook``."""
        hook = self.runtime.message_hook
        if hook is None:
            item.reply(await receive(item.message))
            return
        with hook(self, item.message, item.context):
            item.reply(await receive(item.message))

    def _crashed(self, item: Any, error: Exception) -> None:
        from .._exceptions import ActorCrashed

        self.failed += 1
        self.record_error(error)
        message = item
        if type(item) is AskRequest:
            item.fail(ActorCrashed(self.path, error))
            message = item.message
        self.runtime.dead_letters.post(message, self.path, DeadLetterReason.CRASHED, error)

    # ------------------------------------------------------------------ views

    def statistics(self) -> ActorStatistics:
        samples = sorted(self.latencies)
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
            latency_p50=percentile(samples, 50),
            latency_p99=percentile(samples, 99),
        )

    def snapshot(self) -> dict[str, Any]:
        # Built directly (not via statistics()) because the tree calls this for
        # every actor and must stay cheap to poll with 10,000 of them.
        snap = super().snapshot()
        samples = sorted(self.latencies) if self.latencies else []
        error = self.last_error
        snap["statistics"] = {
            "mailbox_depth": len(self.queue),
            "capacity": self.capacity,
            "high_water_mark": self.high_water_mark,
            "processed": self.processed,
            "failed": self.failed,
            "dropped": self.dropped,
            "restarts": self.restarts,
            "last_error": None if error is None else f"{type(error).__name__}: {error}",
            "latency_p50": percentile(samples, 50),
            "latency_p99": percentile(samples, 99),
        }
        return snap
