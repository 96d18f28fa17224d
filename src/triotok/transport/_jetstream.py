"""L2: the event transport on NATS JetStream, durable streams shared by any number of nodes.

Shape: a :class:`JetStreamTransport` handle (it outlives restarts, like the
bus) plus its :class:`StreamClient` actor, ``/app/transport/stream``, which
owns the connection and runs one pull loop per consumer::

    outbox row --relay--> forward(e): publish triotok.<tenant>.<type>, Nats-Msg-Id = e.id,
                          return on the server's ack (the relay then marks the row)
    stream --durable pull consumer per bus group--> offer(e) into the group's
                          subscription (in stream order) --handled--> ack
                                                      --owed------> nak(delay)

Invariants and reasons:

* An outbox row is marked delivered only after the publish ack: a relay
  that dies in between publishes the row again, and the server drops the
  copy (same message id within ``duplicate_window``). Nothing committed is
  lost while the server is away: ``forward`` raises ``StreamUnavailable``,
  the relay backs off, the rows wait in the outbox.
* A consumer hands events to its subscription one by one in stream order,
  so the subscription's lanes keep per-key order as on L1; handling runs
  concurrently across keys, bounded by ``max_ack_pending``.
* An event is acknowledged only once the bus settled it (handled or
  dead-lettered). Retries of a failing handler happen in the bus, with its
  backoff, in the lane of the event's key (so later events of that key wait,
  as on L1); meanwhile the consumer tells the server the event is in
  progress so it is not sent elsewhere. An event the node could not finish
  (bus stopped, FAIL mailbox full) is nak'ed with the bus's backoff, and
  one delivered ``max_redeliveries`` times without an outcome (a node that
  crashes on it) is dead-lettered.
* Each group's consumer is durable and shared by every node of the group:
  the server gives each event to one of them. Per-key order therefore
  holds per node, as on L1 where each relay delivers its own claims.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import InvalidConfig, NotFound, SchemaError, StreamUnavailable
from .._util import validate_name
from ..actors import Actor, UnknownMessage
from ..resilience import Backoff, BackoffState, backoff_delay
from ..supervision import ChildSpec, Restart
from ._codec import decode, encode
from ._envelope import Envelope
from ._registry import SchemaRegistry
from ._routing import matches
from ._stream_names import ConsumerState, JetStreamConfig, StreamState, consumer_name, subject_for
from ._subscription import Ticket
from ._transport import ConsumerGroup, EventSink, GroupSink

if TYPE_CHECKING:
    # nats-py and trio-asyncio load only once a node uses the stream (about 0.15 s).
    from ._stream_admin import StreamAdmin

__all__ = (
    "ConsumerStatistics",
    "JetStreamStatistics",
    "JetStreamTransport",
    "ReplayStarted",
    "StreamClient",
    "open_stream_admin",
)

logger = logging.getLogger("triotok.stream")

#: Seconds a pull waits on the server before asking again (bounds how late a rebind is seen).
_FETCH_WAIT = 2.0
#: Seconds between two polls of the stream and consumer state (for the tree and metrics).
_STATS_INTERVAL = 1.0
#: Seconds a node waits for a deleted consumer to come back (a replay on another node).
_ABSENT_GRACE = 10.0
_ACK_FLUSH_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ConsumerStatistics:
    """One consumer of this node: its counters and the server's view of the group."""

    name: str
    group: str | None
    pattern: str
    running: bool
    received: int
    acked: int
    naked: int
    skipped: int
    undecodable: int
    gave_up: int
    in_flight: int
    server: dict[str, Any] | None  # the last ConsumerState (pending, ack_pending, lag, ...)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class JetStreamStatistics:
    """A snapshot of the L2 transport of this node (``statistics()``; the tree; metrics).

    ``available``: connected and the last server call succeeded; when false the
    node is degraded (the relay keeps events in the outbox). ``lag``: events
    all of this node's groups still owe, summed over them.
    """

    url: str
    stream: str
    connected: bool
    available: bool
    published: int
    duplicates: int
    publish_failures: int
    reconnects: int
    disconnects: int
    last_error: str | None
    lag: int
    state: dict[str, Any] | None  # the last StreamState (messages, bytes, first/last seq, limits)
    consumers: tuple[ConsumerStatistics, ...]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["consumers"] = [c.as_dict() for c in self.consumers]
        return out


@dataclass(frozen=True, slots=True)
class ReplayStarted:
    """What a replay did: the group's consumers, now starting at ``from_seq`` / ``since``."""

    group: str
    from_seq: int | None
    since: str | None
    consumers: tuple[dict[str, Any], ...]

    @property
    def pending(self) -> int:
        return sum(int(c["lag"]) for c in self.consumers)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "consumers": list(self.consumers), "pending": self.pending}


@dataclass(eq=False)
class _Consumer:
    """The transport's record of one consumer; it outlives restarts of the client actor."""

    spec: ConsumerGroup
    sink: GroupSink
    active: bool = True
    rebind: bool = False
    resetting: bool = False
    created: bool = False  # this process created or found it once
    running: bool = False
    received: int = 0
    acked: int = 0
    naked: int = 0
    skipped: int = 0
    undecodable: int = 0
    gave_up: int = 0
    in_flight: int = 0
    server: ConsumerState | None = None
    owner: object = None  # the client incarnation running its loop
    stop: trio.Event = field(default_factory=trio.Event)
    # "From now on" means from the subscription, not from whenever the server is reached.
    subscribed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def statistics(self) -> ConsumerStatistics:
        spec = self.spec
        return ConsumerStatistics(
            spec.name,
            spec.group,
            spec.pattern,
            self.running,
            self.received,
            self.acked,
            self.naked,
            self.skipped,
            self.undecodable,
            self.gave_up,
            self.in_flight,
            None if self.server is None else self.server.as_dict(),
        )


class _SequentialSink:
    """A plain :data:`EventSink` as a :class:`GroupSink`: awaited in order, raising = nak."""

    def __init__(self, sink: EventSink, backoff: Backoff, rng: random.Random) -> None:
        self._sink = sink
        self._backoff = BackoffState(backoff, rng)
        self._rng = rng

    async def offer(self, envelope: Envelope) -> Ticket | None:
        ticket = Ticket()
        ticket.remaining = 1
        try:
            await self._sink(envelope)
        except Exception as exc:
            ticket.settled(exc)
        else:
            ticket.settled(None)
        return ticket

    async def give_up(self, envelope: Envelope, deliveries: int) -> None:
        logger.error("%s delivered %d times without an outcome: dropped", envelope.id, deliveries)
        await trio.lowlevel.checkpoint()

    def nak_delay(self, deliveries: int) -> float:
        return backoff_delay(self._backoff.policy, deliveries - 1, self._rng)


class JetStreamTransport:
    """The L2 ``Transport``: events on a JetStream stream, consumed by durable groups.

    ::

        stream = JetStreamTransport(JetStreamConfig("nats://127.0.0.1:4222"),
                                    publisher=OutboxTransport(store).publish)
        bus = EventBus(transport=stream)
        await system.spawn(StreamClient, stream, name="stream")      # or stream.child_spec()
        await system.spawn(OutboxRelay, store, stream.forward, name="relay")

    ``publish`` goes through ``publisher`` when given (the outbox: it commits
    the event, the relay forwards it), else straight to the stream (returns
    on the server's ack). ``forward`` is the relay's sink. The bus sees that
    this transport has consumer groups (:meth:`subscribe_group`) and gives
    each of its subscriptions its own consumer; :meth:`subscribe` is the
    plain ``Transport`` method (one durable consumer of every event, its sink
    awaited in order). :meth:`replay` moves a group back in the stream.
    """

    def __init__(
        self,
        config: JetStreamConfig | str,
        *,
        publisher: Callable[[Envelope], Awaitable[None]] | None = None,
        registry: SchemaRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(config, str):
            config = JetStreamConfig(config)
        if not isinstance(config, JetStreamConfig):
            raise InvalidConfig("config", f"must be a JetStreamConfig or URL, got {config!r}")
        self.config = config
        self._publisher = publisher
        self._registry = registry
        self._rng = rng or random.Random()
        self._consumers: dict[str, _Consumer] = {}
        self._admin: StreamAdmin | None = None
        self._client: StreamClient | None = None
        self._ready = trio.Event()
        self._stream_ok = False
        self._state: StreamState | None = None
        self._published = 0
        self._duplicates = 0
        self._publish_failures = 0
        self._reconnects = 0
        self._disconnects = 0
        self._last_error: str | None = None
        self._last_call_ok = False

    # ------------------------------------------------------------------ wiring

    def child_spec(self, id: str = "stream", *, restart: Restart = Restart.PERMANENT) -> ChildSpec:
        """A :class:`ChildSpec` running this transport's :class:`StreamClient`."""
        return ChildSpec(id, StreamClient, (self,), restart=restart, shutdown=10.0)

    @property
    def connected(self) -> bool:
        admin = self._admin
        return admin is not None and admin.connected

    async def wait_connected(self) -> None:
        """Return once a client incarnation is connected and the stream exists."""
        await self._wait_link()
        while not self._stream_ok:
            await self._ensure_or_wait()

    async def _wait_link(self) -> None:
        """Return once connected (the client reconnects by itself; nothing announces it)."""
        while not self.connected:
            if self._admin is None:
                await self._ready.wait()  # no incarnation has connected yet
            else:
                await trio.sleep(0.05)

    async def _ensure_or_wait(self) -> None:
        try:
            await self._ensure_stream(self._require())
        except StreamUnavailable:
            await trio.sleep(0.05)

    # ------------------------------------------------------------------ publishing

    async def publish(self, envelope: Envelope) -> None:
        """Through ``publisher`` (the outbox) when given, else :meth:`forward`."""
        if self._publisher is not None:
            await self._publisher(envelope)
        else:
            await self.forward(envelope)

    async def forward(self, envelope: Envelope) -> None:
        """Publish ``envelope`` to the stream; return on the server's ack (the relay's sink).

        The event id is the message id, so a second forward of the same event
        within ``duplicate_window`` is acknowledged without a second copy.
        Raises :class:`StreamUnavailable` while the server cannot be reached.
        """
        admin = self._require()
        if not self._stream_ok:
            await self._ensure_stream(admin)
        data = encode(envelope, registry=self._registry)
        subject = subject_for(self.config.subject_prefix, envelope.tenant_id, envelope.event_type)
        headers = {"Nats-Msg-Id": str(envelope.id)}
        try:
            ack = await admin.aio(
                admin.js.publish(
                    subject, data, timeout=self.config.publish_timeout, headers=headers
                )
            )
        except StreamUnavailable as exc:
            self._failed(exc)
            self._publish_failures += 1
            self._stream_ok = False  # re-checked (and re-created if lost) on the next forward
            raise
        self._last_call_ok = True
        self._published += 1
        if ack.duplicate:
            self._duplicates += 1

    # ------------------------------------------------------------------ subscribing

    async def subscribe(self, name: str, sink: EventSink) -> None:
        """Every event from now on to ``sink``, under the durable consumer ``name``."""
        validate_name("name", name)
        spec = ConsumerGroup(name.replace(".", "_"), "*", name)
        backoff = Backoff(min=0.1, max=10.0, jitter=0.2)
        await self.subscribe_group(spec, _SequentialSink(sink, backoff, self._rng))

    async def unsubscribe(self, name: str) -> None:
        await self.unsubscribe_group(name.replace(".", "_"))

    async def subscribe_group(self, spec: ConsumerGroup, sink: GroupSink) -> None:
        """Run a pull loop for ``spec``'s consumer, handing its events to ``sink``.

        A name already subscribed raises :class:`InvalidConfig`. The loop
        starts now if the client actor runs, else when it starts.
        """
        if spec.name in self._consumers:
            raise InvalidConfig("name", f"consumer {spec.name!r} already subscribed")
        entry = _Consumer(spec, sink)
        self._consumers[spec.name] = entry
        client = self._client
        if client is not None:
            # Created before returning, so events published after this call reach it.
            try:
                await client._ensure_consumer(entry)
            except StreamUnavailable as exc:
                self._failed(exc)  # the loop creates it once the server is back
            client._start_consumer(entry)
        await trio.lowlevel.checkpoint()

    async def unsubscribe_group(self, name: str) -> None:
        """Stop the loop of consumer ``name`` (the server keeps a durable one)."""
        entry = self._consumers.pop(name, None)
        if entry is not None:
            entry.active = False
            entry.stop.set()
        await trio.lowlevel.checkpoint()

    def group_consumer_name(self, group: str, pattern: str) -> str:
        """The durable consumer name the bus uses for ``group`` and ``pattern``."""
        return consumer_name(group, pattern)

    # ------------------------------------------------------------------ operations

    async def replay(
        self, group: str, *, from_seq: int | None = None, since: datetime | None = None
    ) -> ReplayStarted:
        """Deliver ``group``'s events again from stream sequence ``from_seq`` or time ``since``.

        Every consumer of the group (one per pattern) restarts there; the
        nodes of the group pick the events up as they come. Handlers see
        events again: the inbox keeps their effects single. Raises
        :class:`NotFound` for a group without a consumer.
        """
        validate_name("group", group)
        admin = self._require()
        local = [e for e in self._consumers.values() if e.spec.group == group and e.spec.durable]
        for entry in local:
            entry.resetting = True
        try:
            states = await admin.reset_group(group, from_seq=from_seq, since=since)
        finally:
            for entry in local:
                entry.resetting = False
                entry.rebind = True
        return ReplayStarted(
            group,
            from_seq,
            None if since is None else since.isoformat(),
            tuple(s.as_dict() for s in states),
        )

    async def stream_state(self) -> StreamState:
        return await self._require().stream_state()

    async def consumer_states(self) -> list[ConsumerState]:
        return await self._require().consumers()

    def statistics(self) -> JetStreamStatistics:
        """A snapshot (server-side numbers as of the last poll, about once a second)."""
        consumers = tuple(e.statistics() for e in self._consumers.values())
        admin = self._admin
        return JetStreamStatistics(
            url=self.config.url,
            stream=self.config.stream,
            connected=self.connected,
            available=self.connected and self._last_call_ok,
            published=self._published,
            duplicates=self._duplicates,
            publish_failures=self._publish_failures,
            reconnects=self._reconnects + (admin.reconnects if admin else 0),
            disconnects=self._disconnects + (admin.disconnects if admin else 0),
            last_error=self._last_error,
            lag=sum(e.server.lag for e in self._consumers.values() if e.server is not None),
            state=None if self._state is None else self._state.as_dict(),
            consumers=consumers,
        )

    # ------------------------------------------------------------------ internals

    def _require(self) -> StreamAdmin:
        admin = self._admin
        if admin is None or not admin.connected:
            exc = StreamUnavailable(f"{self.config.url}: not connected")
            self._failed(exc)
            raise exc
        return admin

    def _failed(self, exc: BaseException) -> None:
        self._last_call_ok = False
        self._last_error = f"{type(exc).__name__}: {exc}"

    async def _ensure_stream(self, admin: StreamAdmin) -> None:
        try:
            self._state = await admin.ensure_stream()
        except StreamUnavailable as exc:
            self._failed(exc)
            raise
        self._stream_ok = True
        self._last_call_ok = True


class StreamClient(Actor):
    """The supervised actor of a :class:`JetStreamTransport` (``/app/transport/stream``).

    Each incarnation opens a trio-asyncio loop, connects (retrying with
    backoff while the server is down: the node starts degraded rather than
    failing), creates or updates the stream, then runs one pull loop per
    consumer of the transport's table and polls the server's numbers for
    :meth:`JetStreamTransport.statistics` (registered in the tree as
    ``stream``). Messages: none (:class:`~triotok.actors.UnknownMessage`).
    """

    def __init__(self, transport: JetStreamTransport) -> None:
        self._t = transport
        self._reconnect = BackoffState(Backoff(min=0.05, max=2.0, jitter=0.2), transport._rng)

    async def on_start(self) -> None:
        self.ctx.register("stream", self._t)
        self.ctx.start_soon(self._run)

    async def receive(self, message: Any) -> Any:
        raise UnknownMessage(self.ctx.path, message, ())

    def _start_consumer(self, entry: _Consumer) -> None:
        if entry.owner is self:
            return
        entry.owner = self
        self.ctx.start_soon(self._consume, entry)

    async def _run(self) -> None:
        import trio_asyncio

        from ._stream_admin import close, connect

        t = self._t
        async with AsyncExitStack() as stack:
            # One asyncio loop per process where there is one (the app opens it for
            # asyncpg and nats-py alike); two loops in one thread deadlock under load.
            loop = trio_asyncio.current_loop.get()
            if loop is None:
                loop = await stack.enter_async_context(trio_asyncio.open_loop())
            admin = None
            try:
                while admin is None:
                    try:
                        admin = await connect(t.config, loop)
                    except StreamUnavailable as exc:
                        t._failed(exc)
                        await trio.sleep(self._reconnect.next_delay(trio.current_time()))
                t._admin = admin
                while True:
                    try:
                        await t._ensure_stream(admin)
                        break
                    except StreamUnavailable:
                        await trio.sleep(self._reconnect.next_delay(trio.current_time()))
                t._client = self
                ready, t._ready = t._ready, trio.Event()
                ready.set()
                for entry in list(t._consumers.values()):
                    self._start_consumer(entry)
                await self._poll()
            finally:
                if t._client is self:
                    t._client = None
                if admin is not None:
                    if t._admin is admin:
                        t._admin = None
                        t._reconnects += admin.reconnects
                        t._disconnects += admin.disconnects
                    await close(admin)

    async def _poll(self) -> None:
        """Refresh the stream and consumer numbers; flag consumers that disappeared."""
        t = self._t
        while True:
            admin = t._admin
            if admin is not None and admin.connected:
                try:
                    t._state = await admin.stream_state()
                    t._last_call_ok = True
                    for entry in list(t._consumers.values()):
                        try:
                            entry.server = await admin.consumer_state(entry.spec.name)
                        except NotFound:
                            entry.rebind = True
                except StreamUnavailable as exc:
                    t._failed(exc)
            await trio.sleep(_STATS_INTERVAL)

    # ------------------------------------------------------------------ one consumer

    async def _consume(self, entry: _Consumer) -> None:
        t = self._t
        backoff = BackoffState(Backoff(min=0.05, max=2.0, jitter=0.2), t._rng)
        try:
            while entry.active and entry.owner is self:
                try:
                    await t._wait_link()
                    sub = await self._bind(entry)
                    backoff.failures = 0
                    entry.running = True
                    await self._pull(entry, sub)
                except Exception as exc:
                    # Never crash the client for one consumer: its siblings may be in
                    # the middle of a handler's transaction.
                    entry.running = False
                    t._failed(exc)
                    if isinstance(exc, StreamUnavailable):
                        logger.debug("%s: %s", entry.spec.name, exc)
                    else:
                        logger.exception("%s: pull loop failed; starting it again", entry.spec.name)
                    await trio.sleep(backoff.next_delay(trio.current_time()))
        finally:
            entry.running = False
            if entry.owner is self:
                entry.owner = None

    async def _bind(self, entry: _Consumer) -> Any:
        """Find or create the consumer, then a pull subscription bound to it."""
        admin = await self._ensure_consumer(entry)
        entry.rebind = False
        return await admin.aio(
            admin.js.pull_subscribe_bind(entry.spec.name, stream=self._t.config.stream),
        )

    async def _ensure_consumer(self, entry: _Consumer) -> StreamAdmin:
        t = self._t
        admin = t._require()
        spec = entry.spec
        absent_since: float | None = None
        while True:
            try:
                entry.server = await admin.consumer_state(spec.name)
                break
            except NotFound:
                now = trio.current_time()
                absent_since = now if absent_since is None else absent_since
                # A replay (here or on another node) deletes and re-creates it: wait for that.
                if entry.resetting or (entry.created and now - absent_since < _ABSENT_GRACE):
                    await trio.sleep(0.1)
                    continue
                start = t.config.new_group_start if spec.durable else "new"
                config = admin.consumer_config(
                    spec.name,
                    group=spec.group,
                    pattern=spec.pattern,
                    durable=spec.durable,
                    start=start,
                    # Created late (the server was away): still every event since subscribing.
                    start_time=entry.subscribed_at if start == "new" else None,
                )
                try:
                    entry.server = await admin.add_consumer(config)
                    break
                except StreamUnavailable:
                    # Another node created it first (or the server refused): look again.
                    await trio.sleep(0.05)
        entry.created = True
        return admin

    async def _pull(self, entry: _Consumer, sub: Any) -> None:
        t = self._t
        admin = t._require()
        acks = _Acks(admin)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(acks.run)
                while entry.active and not entry.rebind and entry.owner is self:
                    if entry.resetting:
                        await trio.sleep(0.05)
                        continue
                    msgs = await admin.fetch(sub, t.config.fetch_batch, _FETCH_WAIT)
                    for msg in msgs:
                        await self._dispatch(entry, msg, nursery, acks)
                nursery.cancel_scope.cancel()
        finally:
            await acks.flush_now()
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                await admin.aio(sub.unsubscribe(), check=False)

    async def _dispatch(
        self, entry: _Consumer, msg: Any, nursery: trio.Nursery, acks: _Acks
    ) -> None:
        t = self._t
        entry.received += 1
        try:
            envelope = decode(msg.data, registry=t._registry)
        except SchemaError as exc:
            # Kept in the stream: an upgraded node can replay it; this one never reads it.
            entry.undecodable += 1
            logger.error("%s: undecodable event at seq %s: %s", entry.spec.name, _seq(msg), exc)
            acks.add(msg, "term")
            return
        if not matches(entry.spec.pattern, envelope.event_type):
            entry.skipped += 1
            acks.add(msg, "ack")
            return
        deliveries = _deliveries(msg)
        if deliveries > t.config.max_redeliveries:
            await entry.sink.give_up(envelope, deliveries)
            entry.gave_up += 1
            entry.acked += 1
            acks.add(msg, "ack")
            return
        try:
            ticket = await entry.sink.offer(envelope)
        except Exception as exc:  # the bus is stopped or restarting: the event comes back later
            logger.debug("%s: not accepted (%s); nak", entry.spec.name, exc)
            entry.naked += 1
            acks.add(msg, "nak", entry.sink.nak_delay(deliveries))
            return
        if ticket is None:
            entry.acked += 1
            acks.add(msg, "ack")
            return
        entry.in_flight += 1
        nursery.start_soon(self._finish, entry, msg, ticket, deliveries, acks)

    async def _finish(
        self, entry: _Consumer, msg: Any, ticket: Ticket, deliveries: int, acks: _Acks
    ) -> None:
        progress = max(self._t.config.ack_wait / 3, 0.05)
        try:
            while True:
                with trio.move_on_after(progress):
                    await ticket.done.wait()
                    break
                acks.add(msg, "progress")  # still in a lane (retries): keep it here
        finally:
            entry.in_flight -= 1
        if ticket.error is not None:
            entry.naked += 1
            acks.add(msg, "nak", entry.sink.nak_delay(deliveries))
        else:
            entry.acked += 1
            acks.add(msg, "ack")


@asynccontextmanager
async def open_stream_admin(config: JetStreamConfig | str) -> AsyncIterator[StreamAdmin]:
    """A connection to the stream's server without a node (``triotok events``).

    One attempt: :class:`StreamUnavailable` when the server cannot be reached.

    ::

        async with open_stream_admin("nats://127.0.0.1:4222") as admin:
            print(await admin.consumers())
    """
    from ._stream_admin import open_stream_admin as _open

    if isinstance(config, str):
        config = JetStreamConfig(config)
    async with _open(config) as admin:
        yield admin


class _Acks:
    """Acks, naks and progress of one pull loop, sent in batches (one boundary crossing each)."""

    def __init__(self, admin: StreamAdmin) -> None:
        self._admin = admin
        self._queue: list[tuple[Any, str, float]] = []
        self._wake = trio.Event()

    def add(self, msg: Any, kind: str, delay: float = 0.0) -> None:
        self._queue.append((msg, kind, delay))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await self._flush()

    async def flush_now(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(_ACK_FLUSH_TIMEOUT):
            await self._flush()

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            await self._admin.aio(_send_acks(batch), check=False)
        except Exception as exc:  # the server is away: nothing more to do here
            # Unacknowledged events come back after ack_wait; the inbox drops the copies.
            logger.debug("could not acknowledge %d event(s): %s", len(batch), exc)


async def _send_acks(batch: list[tuple[Any, str, float]]) -> None:
    """asyncio side: one publish per ack into the client's buffer, then one flush."""
    nc = None
    for msg, kind, delay in batch:
        nc = msg._client
        try:
            if kind == "ack":
                await msg.ack()
            elif kind == "nak":
                await msg.nak(delay=delay if delay > 0 else None)
            elif kind == "term":
                await msg.term()
            else:
                await msg.in_progress()
        except Exception:  # already acknowledged, or the connection went away meanwhile
            continue
    if nc is not None and nc.is_connected:
        await nc.flush(timeout=_ACK_FLUSH_TIMEOUT)


def _deliveries(msg: Any) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def _seq(msg: Any) -> int | float:
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:
        return math.nan
