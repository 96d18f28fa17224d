"""SQLite WAL checkpoints off the writer's path.

SQLite checkpoints the write-ahead log itself, by default in the connection
whose commit takes the log past 1,000 pages: that commit copies the pages
back into the database file and syncs it, so one write in a few hundred
takes 10-20 ms instead of 1 (measured: the p99 of a search projection's
transaction fell from 17-21 ms to 2.4 ms without them). The store turns
that off on its writer (``PRAGMA wal_autocheckpoint = 0``) and asks this
thread, on a connection of its own, for a ``PASSIVE`` checkpoint every
``every`` write jobs. A passive checkpoint takes no write lock: commits
keep appending to the log while it copies.

The log restarts from its beginning only at a write that finds it wholly
copied back, which steady writes (a commit landing during each copy) can
put off for ever. So once the log holds more than ``restart_frames`` pages
(10,000: 40 MB of 4 KiB pages), the thread follows its passive checkpoint
with a ``RESTART`` one: that waits for the write lock and holds it while it
copies what the passive one left (a few pages) and syncs, then the next
commit starts the log afresh. The thresholds are Litestream's (1,000 pages
passive, 10,000 restart).

A count of write jobs says nothing of their size: a rebuild's batch of
1,000 rows is one job, and 100 such batches left a 300 MB log that no
checkpoint ever copied back, because no write came after them. Until a
checkpoint copies the log back, every reader searches it for each page it
reads: searches over the rebuilt index ran 2-3 times slower (p50 of a
broad query 25 -> 34 ms, a selective one 1.1 -> 2.3 ms) until the next
write. So the thread also checkpoints when the store has been written to
but ``idle`` seconds (1 s) passed without a request: a log fully copied
back is one readers skip, and the next write starts it afresh (cut back to
the store's ``journal_size_limit``, 64 MiB, so its disk space returns).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ("Checkpointer",)

logger = logging.getLogger("triotok.store")


class Checkpointer:
    """A thread and connection running ``PRAGMA wal_checkpoint(PASSIVE)``: on request, and idle.

    ::

        checkpointer = Checkpointer(connect, every=200)
        checkpointer.start()
        checkpointer.wrote()  # after each write job; cheap (a counter)
        checkpointer.close()
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        every: int,
        restart_frames: int = 10_000,
        idle: float = 1.0,
    ) -> None:
        if every < 1:
            raise ValueError(f"checkpoint every must be >= 1 write, got {every}")
        self.every = every
        self.restart_frames = restart_frames
        self.idle = idle
        self._connect = connect
        self._writes = 0
        #: Written to since the last checkpoint (set by :meth:`wrote`, cleared by the thread).
        self._dirty = False
        self._wanted = threading.Event()
        self._closed = False
        self._done = threading.Condition()
        self._thread = threading.Thread(
            target=self._main, name="triotok-sqlite-checkpoint", daemon=True
        )
        self._opened = threading.Event()
        self._error: sqlite3.Error | None = None
        #: Checkpoints run, the ``RESTART`` ones among them (the log had grown
        #: too long), those run because the store went idle, and the idle
        #: wake-ups that found nothing written (what ``wait_until`` can wait for).
        self.checkpoints = 0
        self.restarts = 0
        self.idle_checkpoints = 0
        self.idle_wakeups = 0
        #: The last checkpoint's (busy, frames in the log, frames copied back).
        self.last: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Start the thread; blocks until its connection is open (its error raises here)."""
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def wrote(self) -> None:
        """Count a write job; every ``every`` of them, ask for a checkpoint."""
        self._dirty = True
        self._writes += 1
        if self._writes >= self.every:
            self._writes = 0
            self._wanted.set()

    def wait_until(self, predicate: Callable[[Checkpointer], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds after a checkpoint (tests; from a thread)."""
        with self._done:
            return self._done.wait_for(lambda: predicate(self), timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._closed = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            self._error = exc
            return
        finally:
            self._opened.set()
        try:
            while True:
                asked = self._wanted.wait(self.idle)
                self._wanted.clear()
                if self._closed:
                    return
                if not asked and not self._dirty:
                    with self._done:
                        self.idle_wakeups += 1
                        self._done.notify_all()
                    continue
                self._dirty = False
                try:
                    last = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    restart = last[1] > self.restart_frames
                    if restart:
                        last = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                except sqlite3.Error as exc:
                    logger.warning("sqlite: a WAL checkpoint failed: %s", exc)
                    self._dirty = True  # try again when next asked or idle
                    continue
                if last[0] or last[1] != last[2]:
                    # A reader held on to part of the log (busy, or not all copied
                    # back): the next idle wake-up tries again.
                    self._dirty = True
                with self._done:
                    self.checkpoints += 1
                    self.restarts += restart
                    self.idle_checkpoints += not asked
                    self.last = (int(last[0]), int(last[1]), int(last[2]))
                    self._done.notify_all()
        finally:
            conn.close()
