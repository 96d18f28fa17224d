"""The outbox relay: a supervised actor moving committed events to a sink.

One loop per incarnation::

    wake (start | notify | poll | timer | retry)
      -> drain: claim a batch in id order, decode, await sink(envelope) one by
         one, mark the delivered ones (one statement per batch); repeat while
         full batches come back
      -> prune delivered rows when due, measure the lag
      -> wait for a NOTIFY, the poll interval, or the next retry / prune time

Invariants and reasons:

* A row is marked delivered only after ``sink`` returned for it, so a crash
  anywhere redelivers rather than loses (at least once).
* A row that cannot be decoded (``SchemaError``) or whose sink raised
  ``PermanentError`` goes to the dead-letter table at once; any other sink
  error marks it failed with a retry time from :class:`OutboxRetry`, and
  after ``max_attempts`` claims it is dead-lettered. The relay never crashes
  on a poison row.
* ``StoreUnavailable`` (database down) does not crash the actor either: the
  loop backs off (``unavailable_backoff``) and resumes by itself, so a
  database restart never exhausts the supervisor's restart intensity. Other
  errors crash the incarnation and the supervisor restarts it.
* A sink raising ``StreamUnavailable`` (the L2 stream's server is away) is
  not the row's fault: no failure is recorded, the batch's remaining rows
  are released and the loop backs off the same way. The rows wait in the
  outbox until the server acknowledges them.
* Retry and prune times are trio deadlines (``trio.current_time``), so a
  ``MockClock`` drives them; the times written to the database are wall-clock
  (``retry_at``, the retention cutoff) because every node must agree on them.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import trio

from .._exceptions import (
    InvalidConfig,
    SchemaError,
    StoreError,
    StoreUnavailable,
    StreamUnavailable,
)
from .._util import positive_int, seconds
from ..actors import Actor, UnknownMessage
from ..resilience import Backoff, BackoffState
from ..transport import EventSink, SchemaRegistry, decode
from ._deadletters import EventDeadLetters
from ._retry import DeadLetterReason, OutboxRetry
from ._source import StoreLike, current_store
from ._sql import parse_timestamp
from ._types import OutboxRow, Store
from ._wakeups import Wakeups

__all__ = ("GetStatistics", "OutboxRelay", "RelayStatistics", "Wake", "default_node_id")

WakeReason = Literal["start", "notify", "poll", "timer", "retry", "request"]

# Bounds the best-effort "mark delivered" of a batch interrupted by cancellation.
_FLUSH_TIMEOUT = 5.0
# Seconds between two measurements of the lag (one query each).
_LAG_INTERVAL = 1.0


def default_node_id() -> str:
    """``hostname:pid``: unique per process, readable in ``outbox.claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RelayStatistics:
    """A snapshot of one relay (this incarnation and those before it).

    ``lag_seconds``: age of the oldest undelivered outbox row at the last
    measurement (0 when none; rows waiting for a retry count). ``listening``:
    whether NOTIFY wake-ups arrive (else the relay polls every
    ``fallback_interval``). ``available``: the last store call succeeded.
    ``sink_unavailable``: passes cut short because the sink's stream was away
    (L2); ``sink_available`` is false until the sink takes an event again.
    """

    node_id: str
    claimed: int
    delivered: int
    failed: int
    dead_lettered: int
    undecodable: int
    batches: int
    pruned: int
    store_errors: int
    wakeups: int
    last_wake_reason: str | None
    lag_seconds: float
    listening: bool
    available: bool
    last_error: str | None
    sink_unavailable: int = 0
    sink_available: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON, metrics and ``system.tree()``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Wake:
    """Tell (or ask) :class:`OutboxRelay`: look for rows now; an ask's reply is ``None``.

    The relay answers at once and drains in its own loop; to wait for the
    rows to be delivered, call :meth:`OutboxRelay.drain` instead.
    """


@dataclass(frozen=True, slots=True)
class GetStatistics:
    """Ask :class:`OutboxRelay`: the reply is its :class:`RelayStatistics`."""


class _Counters:
    """Mutable counters kept on the relay object (they survive only its incarnation)."""

    def __init__(self) -> None:
        self.claimed = 0
        self.delivered = 0
        self.failed = 0
        self.dead_lettered = 0
        self.undecodable = 0
        self.batches = 0
        self.pruned = 0
        self.store_errors = 0
        self.wakeups = 0
        self.last_wake_reason: str | None = None
        self.lag_seconds = 0.0
        self.available = False
        self.last_error: str | None = None
        self.sink_unavailable = 0
        self.sink_available = True


class OutboxRelay(Actor):
    """Delivers committed outbox rows to ``sink`` (any ``async (Envelope) -> None``).

    ::

        transport = OutboxTransport(store)
        await transport.subscribe("bus", bus.deliver)
        relay = await system.spawn(OutboxRelay, store, transport.deliver, name="relay")
        stats = await relay.ask(GetStatistics())     # RelayStatistics
        relay.tell(Wake())                           # look for rows now

    ``store`` is a :class:`Store` or a source of one (``StoreHandle``).
    Options (keyword-only):

    * ``node_id``: the lease owner written to ``outbox.claimed_by``
      (default ``hostname:pid``).
    * ``batch_size`` rows per claim; ``lease_seconds`` a claim lasts: it must
      exceed the time to deliver one batch, else another relay may claim the
      rows again (a duplicate, not a loss).
    * ``poll_interval``: seconds between polls while NOTIFY works;
      ``fallback_interval`` while it does not (and on SQLite, for commits of
      other processes on the same file).
    * ``max_attempts`` and ``backoff``: per-row retries before the
      dead-letter table (see :class:`OutboxRetry`).
    * ``retention``: delivered rows older than this are deleted every
      ``prune_interval`` seconds (``None``: never).
    * ``unavailable_backoff``: waits between attempts while the database is down.
    * ``registry``: the schema registry to decode with (default: the global one).

    Messages: :class:`GetStatistics` answers a :class:`RelayStatistics`;
    :class:`Wake` makes the relay look for rows now. Anything else is refused
    with :class:`~triotok.actors.UnknownMessage`.
    """

    def __init__(
        self,
        store: StoreLike,
        sink: EventSink,
        *,
        node_id: str | None = None,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
        poll_interval: float = 5.0,
        fallback_interval: float = 1.0,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        retention: timedelta | None = timedelta(days=1),
        prune_interval: float = 300.0,
        unavailable_backoff: Backoff | None = None,
        registry: SchemaRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not callable(sink):
            raise InvalidConfig("sink", f"must be an async callable, got {sink!r}")
        positive_int("batch_size", batch_size)
        if retention is not None and (
            not isinstance(retention, timedelta) or retention < timedelta(0)
        ):
            raise InvalidConfig("retention", f"must be a non-negative timedelta, got {retention!r}")
        self.node_id = node_id or default_node_id()
        self._source = store
        self._sink = sink
        self.batch_size = batch_size
        self.lease_seconds = seconds("lease_seconds", lease_seconds, allow_zero=False)
        self.poll_interval = seconds("poll_interval", poll_interval, allow_zero=False)
        self.fallback_interval = seconds("fallback_interval", fallback_interval, allow_zero=False)
        self.prune_interval = seconds("prune_interval", prune_interval, allow_zero=False)
        self.retention = retention
        self.policy = OutboxRetry(
            backoff or Backoff(min=1.0, max=300.0, jitter=0.2), max_attempts, rng=rng
        )
        self._unavailable = BackoffState(
            unavailable_backoff or Backoff(min=0.05, max=5.0, jitter=0.2), rng
        )
        self._registry = registry
        self._counters = _Counters()
        self._wakeups: Wakeups | None = None
        self._store: Store | None = None
        self._dead_letters: EventDeadLetters | None = None
        # Trio-time deadlines: pending retries (a heap) and the next prune.
        self._retries: list[float] = []
        self._prune_at = math.inf
        self._lag_at = -math.inf
        # Row ids delivered but not yet marked, and claimed but not yet settled.
        self._delivered: set[int] = set()
        self._unsettled: set[int] = set()
        self._kick = trio.Event()
        self._drain_waiters: list[trio.Event] = []

    # ------------------------------------------------------------------ actor API

    async def on_start(self) -> None:
        self.ctx.register("relay", self)
        self.ctx.start_soon(self._run)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Wake):
            self._kick.set()
            return None
        if isinstance(message, GetStatistics):
            return self.statistics()
        raise UnknownMessage(self.ctx.path, message, (Wake, GetStatistics))

    async def drain(self) -> None:
        """Look for rows now; return once a pass that started after this call found none left.

        Rows that failed and wait for their retry time are not waited for.
        Meant for tests and orderly shutdown (drain, then stop the actor).
        """
        done = trio.Event()
        self._drain_waiters.append(done)
        self._kick.set()
        await done.wait()

    def statistics(self) -> RelayStatistics:
        """A snapshot of the counters (also shown in ``system.tree()`` as ``relay``)."""
        c = self._counters
        return RelayStatistics(
            node_id=self.node_id,
            claimed=c.claimed,
            delivered=c.delivered,
            failed=c.failed,
            dead_lettered=c.dead_lettered,
            undecodable=c.undecodable,
            batches=c.batches,
            pruned=c.pruned,
            store_errors=c.store_errors,
            wakeups=c.wakeups,
            last_wake_reason=c.last_wake_reason,
            lag_seconds=c.lag_seconds,
            listening=self._wakeups is not None and self._wakeups.listening,
            available=c.available,
            last_error=c.last_error,
            sink_unavailable=c.sink_unavailable,
            sink_available=c.sink_available,
        )

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        store = await current_store(self._source)
        self._store = store
        self._dead_letters = EventDeadLetters(store)
        if self.retention is not None:
            self._prune_at = trio.current_time()  # prune once at start, then periodically
        async with store.listen(
            poll_interval=self.poll_interval, fallback_interval=self.fallback_interval
        ) as wakeups:
            reason: WakeReason = "start"
            while True:
                # Callers of drain() registered before this pass are answered
                # by it, and so are Wake requests made before it.
                waiters, self._drain_waiters = self._drain_waiters, []
                if self._kick.is_set():
                    self._kick = trio.Event()
                self._counters.wakeups += 1
                self._counters.last_wake_reason = reason
                self._wakeups = wakeups
                try:
                    await self._drain(store)
                    await self._housekeeping(store)
                except (StoreUnavailable, StreamUnavailable) as exc:
                    self._drain_waiters[:0] = waiters  # not drained: they wait for the next pass
                    self._unavailable_error(exc)
                    await trio.sleep(self._unavailable.next_delay(trio.current_time()))
                    reason = "retry"
                    continue
                self._unavailable.failures = 0
                self._counters.available = True
                for done in waiters:
                    done.set()
                reason = await self._wait(wakeups)

    async def _wait(self, wakeups: Wakeups) -> WakeReason:
        """Sleep until a wake-up, the poll interval, or our next retry / prune deadline."""
        if self._kick.is_set():
            self._kick = trio.Event()
            return "request"
        deadline = min(self._retries[0] if self._retries else math.inf, self._prune_at)
        woke: bool | None = None
        async with trio.open_nursery() as nursery:
            # Whichever comes first of a NOTIFY / poll and a Wake message.
            async def on_wakeup() -> None:
                nonlocal woke
                woke = await wakeups.wait()
                nursery.cancel_scope.cancel()

            async def on_kick() -> None:
                await self._kick.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(on_wakeup)
            nursery.start_soon(on_kick)
            nursery.cancel_scope.deadline = deadline
        if self._kick.is_set():
            self._kick = trio.Event()
            return "request"
        if woke is None:
            return "timer"
        return "notify" if woke else "poll"

    async def _drain(self, store: Store) -> None:
        """Settle what an outage left open; claim and deliver until a claim comes back short."""
        now = trio.current_time()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)  # due again: the claims below take those rows
        await self._settle(store)
        while True:
            rows = await store.claim_outbox(self.node_id, self.batch_size, self.lease_seconds)
            self._counters.available = True
            if not rows:
                return
            self._counters.claimed += len(rows)
            self._counters.batches += 1
            # Claimed rows whose outcome is not yet written; if the loop is
            # interrupted they are released rather than left to their lease.
            self._unsettled.update(row.id for row in rows)
            try:
                for row in rows:
                    await self._deliver(store, row)
            except BaseException:
                # Shielded and bounded on the way out (cancelled, or the
                # database went away): acknowledge what reached the sink.
                with trio.CancelScope(shield=True), trio.move_on_after(_FLUSH_TIMEOUT):
                    await self._settle(store, quiet=True)
                raise
            await self._settle(store)
            if len(rows) < self.batch_size:
                return

    async def _settle(self, store: Store, *, quiet: bool = False) -> None:
        """Mark delivered rows delivered and release unsettled leases (``quiet``: errors kept)."""
        try:
            if self._delivered:
                batch = list(self._delivered)
                await store.mark_delivered(batch)
                self._delivered.difference_update(batch)
                self._counters.delivered += len(batch)
            # Only a batch cut short leaves unsettled rows: releasing them
            # makes them due now instead of when their lease ends.
            if self._unsettled:
                now = datetime.now(UTC)
                for row_id in sorted(self._unsettled):
                    await store.mark_failed(row_id, "released: the relay was interrupted", now)
                    self._unsettled.discard(row_id)
        except StoreError:
            if not quiet:
                raise

    async def _deliver(self, store: Store, row: OutboxRow) -> None:
        """Hand one row to the sink and record the outcome."""
        try:
            envelope = decode(row.payload, registry=self._registry)
        except SchemaError as exc:
            # Poison: retrying cannot fix bytes this code cannot read.
            self._counters.undecodable += 1
            await self._dead_letter(row, "undecodable", exc)
            return
        try:
            await self._sink(envelope)
            self._counters.sink_available = True
        except StreamUnavailable:
            raise  # the stream is away, not the row's fault: the whole pass backs off
        except Exception as exc:  # the sink's failure, not ours; Cancelled passes
            self._counters.failed += 1
            self._counters.last_error = _describe(exc)
            decision = self.policy.decide(row.attempts, exc)
            if decision.dead_letter is not None:
                await self._dead_letter(row, decision.dead_letter, exc)
                return
            retry_at = datetime.now(UTC) + timedelta(seconds=decision.delay)
            await store.mark_failed(row.id, _describe(exc), retry_at)
            self._unsettled.discard(row.id)
            heapq.heappush(self._retries, trio.current_time() + decision.delay)
            return
        self._unsettled.discard(row.id)
        self._delivered.add(row.id)

    async def _dead_letter(self, row: OutboxRow, reason: DeadLetterReason, exc: Exception) -> None:
        assert self._dead_letters is not None
        if await self._dead_letters.add(row, reason, _describe(exc), node_id=self.node_id):
            self._counters.dead_lettered += 1
        self._unsettled.discard(row.id)

    async def _housekeeping(self, store: Store) -> None:
        """Prune when due (trio time) and measure the lag (at most once a second)."""
        if self.retention is not None and trio.current_time() >= self._prune_at:
            self._counters.pruned += await store.prune_delivered(self.retention)
            self._prune_at = trio.current_time() + self.prune_interval
        if trio.current_time() < self._lag_at:
            return
        # At most once a second: under a steady stream the query would
        # otherwise cost a round trip per event.
        self._lag_at = trio.current_time() + _LAG_INTERVAL
        oldest = await store.fetchval(
            "SELECT created_at FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1"
        )
        created = parse_timestamp(oldest)
        self._counters.lag_seconds = (
            0.0 if created is None else max(0.0, (datetime.now(UTC) - created).total_seconds())
        )

    def _unavailable_error(self, exc: StoreUnavailable | StreamUnavailable) -> None:
        if isinstance(exc, StreamUnavailable):
            self._counters.sink_unavailable += 1
            self._counters.sink_available = False
        else:
            self._counters.store_errors += 1
            self._counters.available = False
        self._counters.last_error = _describe(exc)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
