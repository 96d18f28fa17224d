"""ActorRef: the only handle outside code has on an actor."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from .._exceptions import ActorStopped, AskTimeout, MailboxFull
from .._util import seconds
from ._ask import AskRequest
from ._deadletters import DeadLetterReason
from ._mailbox import Overflow
from ._stats import ActorStatistics

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._runtime import ContextCapture

_INF = math.inf

__all__ = ("ActorRef", "TracedActorRef", "track_capture")

#: Recording scopes open in this process, whatever runtime traces them.
_open_scopes = 0
#: ``_open_scopes > 0``: while False, traced refs queue exactly what plain
#: refs queue. A module-global bool, not the capture's counter: ``tell`` then
#: tests one ``LOAD_GLOBAL`` whose jump needs no ``__bool__`` of an int (the
#: capture's counter, two attribute loads deeper, cost 3.5-4 % of a traced
#: ``tell`` with nothing sampled).
_capturing = False


def track_capture(delta: int) -> None:
    """Count a recording scope opened (``+1``) or closed (``-1``) in this process."""
    global _open_scopes, _capturing
    _open_scopes += delta
    _capturing = _open_scopes > 0


class ActorRef:
    """A stable reference to an actor path; valid across restarts of the actor.

    A supervisor's ref is a :class:`~triotok.supervision.SupervisorRef`, with
    the same ``tell``/``send``/``ask``/``stop``/``statistics`` methods but no
    mailbox behind them.

    >>> ref.tell("hello")                 # never blocks          # doctest: +SKIP
    >>> await ref.send("hello")           # waits for room        # doctest: +SKIP
    >>> reply = await ref.ask("ping")     # reply or an error     # doctest: +SKIP
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def name(self) -> str:
        return self._cell.name

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self._cell.path)

    def tell(self, message: Any) -> None:
        """Queue ``message`` without blocking.

        A full mailbox applies its overflow policy: ``BLOCK`` and ``FAIL`` raise
        :class:`MailboxFull`, the drop policies dead-letter a message.  A
        stopped actor dead-letters the message.
        """
        cell = self._cell
        queue = cell.queue
        if len(queue) < cell.capacity and cell.accepting:
            queue.append(message)
            depth = len(queue)
            if depth > cell.high_water_mark:
                cell.high_water_mark = depth
            task = cell.waiter
            if task is not None:
                cell.waiter = None
                trio.lowlevel.reschedule(task)
        else:
            cell.enqueue_full(message, raise_on_block=True)

    async def send(self, message: Any) -> None:
        """Queue ``message``, waiting for room when a ``BLOCK`` mailbox is full."""
        await self._put(message)
        await trio.lowlevel.checkpoint()

    async def _put(self, item: Any) -> None:
        cell = self._cell
        while cell.accepting and len(cell.queue) >= cell.capacity:
            if cell.overflow is not Overflow.BLOCK:
                break
            cell.blocked += 1
            try:
                await cell.room.park()
            finally:
                cell.blocked -= 1
        if cell.accepting and len(cell.queue) < cell.capacity:
            cell.queue.append(item)
            depth = len(cell.queue)
            if depth > cell.high_water_mark:
                cell.high_water_mark = depth
            cell.wake()
        else:
            cell.enqueue_full(item, raise_on_block=False)

    async def ask(self, message: Any, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109  # the contract names it; a scope per ask would cost 2x
        """Send ``message`` and return the actor's reply.

        Raises :class:`AskTimeout` after ``timeout`` seconds (waiting for room
        in a full ``BLOCK`` mailbox counts), :class:`ActorCrashed` if handling
        the message raised, :class:`ActorStopped` if the actor is or gets
        stopped first, :class:`MailboxFull` if the overflow policy refuses or
        drops the request.  A caller never hangs.
        """
        if not 0 < timeout < _INF:  # the hot path; nan fails too, the helper words why
            seconds("timeout", timeout, allow_zero=False)
        cell = self._cell
        deadline = trio.current_time() + timeout
        queue = cell.queue
        if len(queue) >= cell.capacity or not cell.accepting:
            await self._wait_for_room(message, deadline, timeout)
        request = AskRequest(message, cell.path, timeout, current_task())
        cell.runtime.ask_timer.add(request, deadline)
        if len(queue) < cell.capacity:
            queue.append(request)
            depth = len(queue)
            if depth > cell.high_water_mark:
                cell.high_water_mark = depth
            cell.wake()
        else:  # DROP_OLD makes room by dropping the oldest message
            cell.enqueue_full(request, raise_on_block=False)
        return await wait_task_rescheduled(request.abort)

    async def _wait_for_room(self, message: Any, deadline: float, timeout: float) -> None:  # noqa: ASYNC109  # for the error message only
        """Ask's slow path: the mailbox is full or closed when the ask arrives."""
        cell = self._cell
        if cell.accepting and cell.overflow is Overflow.BLOCK:
            with trio.move_on_at(deadline):
                while cell.accepting and len(cell.queue) >= cell.capacity:
                    cell.blocked += 1
                    try:
                        await cell.room.park()
                    finally:
                        cell.blocked -= 1
            if cell.accepting and len(cell.queue) >= cell.capacity:
                raise AskTimeout(cell.path, timeout)
        else:
            await trio.lowlevel.checkpoint()
        if not cell.accepting:
            error: Exception = ActorStopped(cell.path)
            cell.runtime.dead_letters.post(message, cell.path, DeadLetterReason.STOPPED, error)
            raise error
        if len(cell.queue) >= cell.capacity and cell.overflow is not Overflow.DROP_OLD:
            error = MailboxFull(cell.path, cell.capacity)
            if cell.overflow is Overflow.DROP_NEW:
                cell.dropped += 1
                reason = DeadLetterReason.MAILBOX_FULL
                cell.runtime.dead_letters.post(message, cell.path, reason, error)
            raise error

    async def stop(self) -> None:
        """Stop the actor for good and wait until it has stopped.

        Queued messages become dead letters and pending asks get
        :class:`ActorStopped`.  Stopping a stopped actor does nothing.
        """
        cell = self._cell
        parent = cell.parent
        terminate = getattr(parent, "terminate_child", None)
        # ``closed`` means stopped for good; a child stopped only to be
        # restarted (a group restart, an escalation) is still stopped here.
        if terminate is None or cell.closed:
            await trio.lowlevel.checkpoint()
            return
        task = cell.task
        if task is not None and task is current_task():
            # An actor stopping itself cannot wait for its own end: it finishes
            # after the current message and its supervisor removes it.
            cell.terminate_requested = True
            cell.request_stop()
            await trio.lowlevel.checkpoint()
            return
        await terminate(cell.name)

    def statistics(self) -> ActorStatistics:
        """A frozen snapshot of the actor's counters and state."""
        return self._cell.statistics()


class TracedActorRef(ActorRef):
    """The ref of a cell spawned while the runtime had a ``context_capture``.

    ``tell``, ``send`` and ``ask`` capture the sender's trace context with the
    message (a told message travels as :meth:`AskRequest.told`), so the
    receiving cell handles it under ``runtime.message_hook`` as a child of
    the sender. While no recording scope is open in the process
    (:func:`track_capture`) they queue exactly what an :class:`ActorRef`
    queues. ``tell`` and ``ask`` repeat the untraced fast paths instead of
    calling them: a call level would cost more than the 3 % that tracing
    installed but idle may cost.
    """

    __slots__ = ("_capture",)

    def __init__(self, cell: ActorCell, capture: ContextCapture) -> None:
        super().__init__(cell)
        self._capture = capture

    def tell(self, message: Any) -> None:
        if _capturing:
            context = self._capture.capture(message)
            if context is not None:
                message = AskRequest.told(message, self._cell.path, context)
        cell = self._cell
        queue = cell.queue
        if len(queue) < cell.capacity and cell.accepting:
            queue.append(message)
            depth = len(queue)
            if depth > cell.high_water_mark:
                cell.high_water_mark = depth
            task = cell.waiter
            if task is not None:
                cell.waiter = None
                trio.lowlevel.reschedule(task)
        else:
            cell.enqueue_full(message, raise_on_block=True)

    async def send(self, message: Any) -> None:
        if _capturing:
            context = self._capture.capture(message)
            if context is not None:
                message = AskRequest.told(message, self._cell.path, context)
        await self._put(message)
        await trio.lowlevel.checkpoint()

    async def ask(self, message: Any, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109  # as ActorRef.ask
        if not 0 < timeout < _INF:
            seconds("timeout", timeout, allow_zero=False)
        cell = self._cell
        deadline = trio.current_time() + timeout
        queue = cell.queue
        if len(queue) >= cell.capacity or not cell.accepting:
            await self._wait_for_room(message, deadline, timeout)
        request = AskRequest(message, cell.path, timeout, current_task())
        if _capturing:
            request.context = self._capture.capture(message)
        cell.runtime.ask_timer.add(request, deadline)
        if len(queue) < cell.capacity:
            queue.append(request)
            depth = len(queue)
            if depth > cell.high_water_mark:
                cell.high_water_mark = depth
            cell.wake()
        else:
            cell.enqueue_full(request, raise_on_block=False)
        return await wait_task_rescheduled(request.abort)
