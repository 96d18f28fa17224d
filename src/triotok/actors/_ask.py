"""Ask requests and their deadlines.

An ask parks the calling task with ``wait_task_rescheduled`` and the actor
reschedules it with the reply: no channel, no event and no cancel scope per
ask.  Deadlines are kept by one :class:`AskTimer` task per system: requests
with the same timeout expire in arrival order, so each timeout value has a
FIFO queue and the timer sleeps until the earliest live front.  Finished
requests are dropped lazily from the fronts and by compaction, which keeps
the queues proportional to the asks actually in flight.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import outcome
import trio
from trio.lowlevel import Abort, Task, reschedule

from .._exceptions import AskTimeout

__all__ = ("AskRequest", "AskTimer", "Failure")


class Failure:
    """A handler's answer that is an error, without the handler crashing.

    ``return Failure(NotFound("no such order"))`` from ``receive`` makes the
    asker's ``ask`` raise that error, as Akka's ``Status.Failure`` does: the
    actor keeps running, nothing is dead-lettered, and no restart is counted.
    Raising it instead is a crash (the asker gets :class:`ActorCrashed`).
    A ``Failure`` sent with ``tell`` has nobody to reach and is dropped.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Failure({self.error!r})"


class AskRequest:
    """One pending ask: the message and the task waiting for the reply.

    ``task`` is ``None`` once the request is settled (replied, failed, timed
    out or abandoned by a cancelled caller); settling twice is a no-op.

    ``context`` is the sender's trace context when the runtime has a
    :class:`~triotok.actors.lowlevel.ContextCapture` and the sender was in a
    traced context (else ``None``). A message *told* in such a context is
    queued as an ``AskRequest`` too (:meth:`told`: no task, ``timeout`` 0),
    so the context travels with it without a second kind of queue item.
    """

    __slots__ = ("context", "deadline", "message", "path", "task", "timeout")

    def __init__(self, message: Any, path: str, timeout: float, task: Task | None) -> None:
        self.message = message
        self.path = path
        self.timeout = timeout
        self.task = task
        self.deadline = math.inf
        self.context: Any = None

    @classmethod
    def told(cls, message: Any, path: str, context: Any) -> AskRequest:
        """A ``tell`` that carries ``context``: nobody waits for its reply."""
        request = cls(message, path, 0.0, None)
        request.context = context
        return request

    @property
    def is_tell(self) -> bool:
        """Whether this carries a told message (see :meth:`told`), not an ask."""
        return self.timeout == 0.0

    def reply(self, value: Any) -> None:
        task = self.task
        if task is not None:
            self.task = None
            if type(value) is Failure:
                reschedule(task, outcome.Error(value.error))
            else:
                reschedule(task, outcome.Value(value))

    def fail(self, error: BaseException) -> None:
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, outcome.Error(error))

    def abort(self, raise_cancel: Any) -> Abort:
        """The asker was cancelled: nobody waits for the reply any more."""
        self.task = None
        return Abort.SUCCEEDED

    def __repr__(self) -> str:
        return f"AskRequest({self.message!r}, path={self.path!r})"


class AskTimer:
    """Fails asks whose deadline passed with :class:`AskTimeout`."""

    _MIN_COMPACT = 64

    def __init__(self) -> None:
        self._queues: dict[float, deque[AskRequest]] = {}
        self._compact_at: dict[float, int] = {}
        self._scope: trio.CancelScope | None = None
        self._next = math.inf

    def add(self, request: AskRequest, deadline: float) -> None:
        timeout = request.timeout
        request.deadline = deadline
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
            self._compact_at[timeout] = self._MIN_COMPACT
        while queue and queue[0].task is None:
            queue.popleft()
        queue.append(request)
        if len(queue) >= self._compact_at[timeout]:
            live = deque(r for r in queue if r.task is not None)
            self._queues[timeout] = live
            self._compact_at[timeout] = max(self._MIN_COMPACT, 2 * len(live))
        if deadline < self._next:
            self._next = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    async def run(self) -> None:
        """The timer task: sleep until the earliest deadline, expire, repeat."""
        while True:
            with trio.CancelScope(deadline=self._next) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._expire(trio.current_time())

    def _expire(self, now: float) -> None:
        earliest = math.inf
        for timeout, queue in list(self._queues.items()):
            while queue and (queue[0].task is None or queue[0].deadline <= now):
                request = queue.popleft()
                if request.task is not None:
                    request.fail(AskTimeout(request.path, request.timeout))
            if queue:
                earliest = min(earliest, queue[0].deadline)
            else:
                del self._queues[timeout]
                del self._compact_at[timeout]
        self._next = earliest

    def pending(self) -> int:
        """Asks still waiting (for tests and statistics)."""
        return sum(1 for q in self._queues.values() for r in q if r.task is not None)
