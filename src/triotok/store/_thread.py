"""A long-lived thread that owns one sqlite3 connection and runs jobs in FIFO order.

sqlite3 calls block, so they never run on the trio thread. Each owner thread
is fed by a queue; a job's result is handed back by rescheduling the waiting
trio task, which costs one queue put and one ``run_sync_soon`` per call
(cheaper than starting a worker per call). Jobs cannot be abandoned: once
queued, a job runs to completion and a cancelled caller waits for it, so a
``COMMIT`` is never half-observed.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import outcome
import trio

__all__ = ("ConnectionThread",)

T = TypeVar("T")

_Job = Callable[[], None]


class ConnectionThread:
    """One thread, one connection. ``await run(fn)`` calls ``fn(connection)`` there."""

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.name = name
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._depth = 0
        self._closed = False
        #: Jobs submitted since start (the store's ``round_trips``).
        self.jobs = 0

    @property
    def queue_depth(self) -> int:
        """Jobs queued or running."""
        return self._depth

    async def start(self) -> None:
        """Start the thread and open the connection on it (errors propagate here)."""
        self._thread.start()
        await self.run(lambda _conn: None)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the owner thread and return its result."""
        if self._closed:
            raise trio.ClosedResourceError(f"{self.name} is closed")
        await trio.lowlevel.checkpoint_if_cancelled()
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def job() -> None:
            result = outcome.capture(self._call, fn)
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._depth += 1
        self.jobs += 1
        try:
            self._jobs.put(job)
            # Abort.FAILED: the job is already queued and will run; cancellation
            # is delivered at the caller's next checkpoint, after the result.
            value: T = await trio.lowlevel.wait_task_rescheduled(
                lambda _raise_cancel: trio.lowlevel.Abort.FAILED
            )
            return value
        finally:
            self._depth -= 1

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        return fn(self._conn)

    async def aclose(self) -> None:
        """Close the connection on its thread and join the thread."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return
        self._jobs.put(None)
        await trio.to_thread.run_sync(self._thread.join)

    def _main(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                job()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
