"""The event bus: delivers events to subscriber actors by type pattern, with retries and a DLQ.

Shape: an :class:`EventBus` handle (a plain object that outlives restarts, like
a store handle) plus its :class:`BusActor`, a supervised actor. The handle
keeps the subscription table, the dead-letter queue and the counters; the
actor owns one :class:`~._subscription.SubscriptionActor` child per
subscription, re-spawned from the table whenever the bus actor (re)starts::

    /app/transport/bus                  BusActor (components: bus, dead_letter_queue)
      /app/transport/bus/sub-1-indexer  SubscriptionActor: "product.*" -> /app/indexer
      /app/transport/bus/sub-2-audit    SubscriptionActor: "*" in group "audit"

Data flow: ``bus.publish(e)`` -> ``transport.publish(e)`` -> the bus's sink
(``deliver(e, wait=False)``) -> one :class:`~._subscription.Delivery` per
matching subscription, into that subscription actor's mailbox -> a lane ->
``await subscriber.ask(e)`` with retries -> handled or dead-lettered.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import ActorStopped, InvalidConfig, MailboxFull, SchemaError, TransientError
from .._util import validate_name
from ..actors import ActorRef, DeadLetter, DeadLetterReason, Mailbox, Overflow
from ..resilience import GiveUpReason, RetryPolicy, failure_cause
from ..supervision import ChildSpec, Restart
from ._codec import DEFAULT_MAX_SIZE, decode, encode
from ._dlq import DeadEvent, DeadLetterLog, InMemoryDeadLetterLog
from ._dlq_queue import DeadLetterQueue
from ._envelope import Envelope
from ._memory import InMemoryTransport
from ._registry import SchemaRegistry
from ._routing import key_hash, matches, validate_pattern
from ._stream_names import consumer_name
from ._subscription import Delivery, DeliveryHook, Outcome, Subscription, Ticket
from ._transport import ConsumerGroup, GroupTransport, Transport

if TYPE_CHECKING:
    from ._bus_actor import BusActor

__all__ = ("BusStatistics", "EventBus", "SubscriptionInfo")

logger = logging.getLogger("triotok.bus")

#: Default number of sequential lanes per subscription (see ``EventBus``).
DEFAULT_LANES = 8
_MAX_LANES = 1024
_DROPS = (DeadLetterReason.MAILBOX_FULL, DeadLetterReason.DROPPED_OLDEST)
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as seen from outside: what it matches and who gets the events."""

    pattern: str
    group: str | None
    subscribers: tuple[str, ...]
    path: str  # the subscription actor ("" until the bus actor has spawned it)


@dataclass(frozen=True, slots=True)
class BusStatistics:
    """Counters of a bus since it was created (per-delivery outcomes summed over subscriptions).

    ``published`` counts ``bus.publish`` calls, ``delivered`` envelopes that
    reached ``deliver``; each delivery to a subscription ends ``handled``,
    ``dead_lettered`` (bus DLQ), ``dropped`` (its mailbox policy; actor dead
    letters), ``unsubscribed`` or ``abandoned`` (bus stopped first), unless
    still ``in_flight``.
    """

    subscriptions: int
    published: int
    delivered: int
    handled: int
    retries: int
    dead_lettered: int
    dropped: int
    unsubscribed: int
    abandoned: int
    in_flight: int
    by_subscription: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (shown in ``system.tree()`` on the bus actor)."""
        out = dataclasses.asdict(self)
        out["by_subscription"] = list(self.by_subscription)
        return out


class EventBus:
    """Delivers events to subscriber actors by event-type pattern; see the module docstring.

    Build it, then run its :class:`BusActor` under a supervisor
    (:meth:`child_spec`), or use :func:`open_event_bus` for a bus under the
    root of a system::

        async with open_event_bus(system) as bus:
            await bus.subscribe("product.*", indexer_ref)
            await bus.subscribe("order.*", worker_ref, group="workers")
            await bus.publish(Envelope.new(ProductCreated(sku="a-1"), tenant_id="acme"))

    Delivery contract:

    - a subscriber actor receives each matching envelope as an ``ask``; its
      reply is ignored, raising is a failure (the actor crashes and its
      supervisor restarts it, as usual);
    - per subscription, envelopes with the same ordering key (tenant,
      aggregate; see ``_routing.py``) are handed over one at a time, in the
      order their ``deliver`` calls returned, retries included;
    - a failure is retried per ``retry`` (exponential backoff with jitter,
      ``retry_count`` one higher each time) or dead-lettered at once when
      final (:func:`~triotok.resilience.is_retryable`); exhausted attempts dead-letter
      too. :attr:`dead_letters` lists and replays them.

    ``lanes`` is how many keys a subscription works on concurrently (a key
    in backoff holds up only its lane; a group needs as many lanes as
    members to keep all of them busy). The bus subscribes itself on
    ``transport`` as ``name`` when its actor first starts; ``sink_waits``
    (default: False for an :class:`InMemoryTransport`, True for any other)
    says whether that sink waits for handling (``deliver(wait=True)``) or
    only for acceptance. ``strict`` round-trips every envelope
    through the codec before delivery, each subscription getting its own
    decoded copy (the test suite's mode; :func:`open_event_bus` takes it from
    a test system). With ``attach_publisher`` the bus serves ``ctx.publish``
    for every actor of its system.
    """

    def __init__(
        self,
        *,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        name: str = "bus",
        strict: bool = False,
        lanes: int = DEFAULT_LANES,
        dead_letters: DeadLetterLog | None = None,
        registry: SchemaRegistry | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        attach_publisher: bool = True,
        sink_waits: bool | None = None,
        rng: random.Random | None = None,
    ) -> None:
        validate_name("name", name)
        _check_lanes(lanes)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidConfig("retry", f"must be a RetryPolicy, got {retry!r}")
        #: The transport the bus publishes to and subscribes on (as ``name``).
        self.transport: Transport = transport if transport is not None else InMemoryTransport()
        self.retry = retry if retry is not None else RetryPolicy()
        self.name = name
        self.strict = strict
        self.lanes = lanes
        self.attach_publisher = attach_publisher
        # The sink the bus subscribes on its transport. An in-memory transport
        # runs it inside the publisher's ``publish``: waiting for handlers there
        # would deadlock an actor publishing what it subscribes to, so it only
        # waits for acceptance. A durable transport (outbox, stream) runs it
        # from a relay that marks the event done when it returns: it must wait
        # until every subscription handled or dead-lettered the event.
        if sink_waits is None:
            sink_waits = not isinstance(self.transport, InMemoryTransport)
        self.sink_waits = sink_waits
        # A transport with consumer groups (L2) gets one consumer per subscription.
        self._grouped = callable(getattr(self.transport, "subscribe_group", None))
        #: The dead-letter queue (a ``DeadLetterStore``): list, get, replay, purge.
        self.dead_letters = DeadLetterQueue(
            self, dead_letters if dead_letters is not None else InMemoryDeadLetterLog()
        )
        self._registry = registry
        self._max_size = max_size
        self._rng = rng or random.Random()
        self._subs: dict[tuple[str, str, str], Subscription] = {}
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        self._retiring: list[Subscription] = []
        self._names = itertools.count(1)
        self._totals: dict[str, int] = {}
        self._published = 0
        self._delivered = 0
        self._retries = 0
        self._actor: BusActor | None = None  # the running incarnation
        self._ref: ActorRef | None = None
        self._ready = trio.Event()
        self._subscribed = False
        self._runtime: Any = None
        self._unsubscribe_office: Any = None
        #: Instrumentation seam (telemetry: consumer spans, event metrics); None: none.
        self.delivery_hook: DeliveryHook | None = None

    # ------------------------------------------------------------------ wiring

    def child_spec(
        self, id: str | None = None, *, restart: Restart = Restart.PERMANENT
    ) -> ChildSpec:
        """A :class:`ChildSpec` running this bus's actor, for a supervisor's children."""
        from ._bus_actor import BusActor  # the actor module builds on this one

        return ChildSpec(id or self.name, BusActor, (self,), restart=restart, shutdown=5.0)

    @property
    def path(self) -> str | None:
        """The bus actor's path once it has started."""
        return None if self._ref is None else self._ref.path

    @property
    def running(self) -> bool:
        """Whether an incarnation of the bus actor is up (deliveries are accepted)."""
        return self._actor is not None

    async def aclose(self) -> None:
        """Detach from the transport, ``ctx.publish`` and the actor dead letters."""
        if self._subscribed:
            self._subscribed = False
            if self._grouped:
                for sub in self._subs.values():
                    await self._detach(sub)
            else:
                await self.transport.unsubscribe(self.name)
        runtime = self._runtime
        if runtime is not None and runtime.publisher == self._publish_from_actor:
            runtime.publisher = None
        if self._unsubscribe_office is not None:
            self._unsubscribe_office()
            self._unsubscribe_office = None
        await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(
        self,
        pattern: str,
        ref: ActorRef,
        *,
        group: str | None = None,
        mailbox: Mailbox | None = None,
        lanes: int | None = None,
    ) -> SubscriptionInfo:
        """Deliver events whose type matches ``pattern`` to ``ref`` from now on.

        Without ``group`` the actor gets every matching event; members of one
        ``group`` (per pattern) share them, one delivery per event, each key
        always to the same member while the membership is unchanged.
        ``mailbox`` (default ``Mailbox()``, BLOCK) and ``lanes`` configure the
        subscription actor; later members of a group may omit them, but not
        contradict them. Subscribing again is a no-op. Returns once the
        subscription actor runs (or, if the bus actor is not started yet,
        once recorded: it is spawned when the bus starts).
        """
        validate_pattern(pattern)
        if not isinstance(ref, ActorRef):  # a SupervisorRef takes no events
            raise InvalidConfig("ref", f"must be the ref of an actor, got {ref!r}")
        if group is not None:
            validate_name("group", group)
        if mailbox is not None and not isinstance(mailbox, Mailbox):
            raise InvalidConfig("mailbox", f"must be a Mailbox, got {mailbox!r}")
        if lanes is not None:
            _check_lanes(lanes)
        key = (pattern, "group", group) if group is not None else (pattern, "actor", ref.path)
        sub = self._subs.get(key)
        created = sub is None
        if sub is None:
            label = (group or ref.name)[:100]
            sub = Subscription(
                key=key,
                name=f"sub-{next(self._names)}-{label}",
                pattern=pattern,
                group=group,
                mailbox=mailbox or Mailbox(),
                lanes=lanes or self.lanes,
                totals=self._totals,
            )
            self._subs[key] = sub
            self._routes.clear()
        else:
            if mailbox is not None and mailbox != sub.mailbox:
                raise InvalidConfig("mailbox", f"{sub.name} already uses {sub.mailbox!r}")
            if lanes is not None and lanes != sub.lanes:
                raise InvalidConfig("lanes", f"{sub.name} already has {sub.lanes} lanes")
        if group is None:
            sub.members = [ref]  # same path: a re-spawned actor's new ref replaces the old
        elif ref not in sub.members:
            sub.members.append(ref)
        await self._reconcile()
        if created and self._grouped and self._subscribed:
            await self._attach(sub)
        return _info(sub)

    async def unsubscribe(self, pattern: str, ref: ActorRef, *, group: str | None = None) -> bool:
        """Stop delivering ``pattern`` to ``ref`` (in ``group``); False if it was not subscribed.

        When the last member leaves, the subscription actor stops; what it
        still held is settled as unsubscribed (nobody owes it any more).
        """
        key = (pattern, "group", group) if group is not None else (pattern, "actor", ref.path)
        sub = self._subs.get(key)
        if sub is None or ref not in sub.members:
            await trio.lowlevel.checkpoint()
            return False
        sub.members.remove(ref)
        if sub.members:
            await trio.lowlevel.checkpoint()
            return True
        sub.removed = True
        del self._subs[key]
        self._routes.clear()
        self._retiring.append(sub)
        if self._grouped and self._subscribed:
            await self._detach(sub)
        await self._reconcile()
        return True

    def subscriptions(self) -> list[SubscriptionInfo]:
        """Every current subscription, oldest first."""
        return [_info(sub) for sub in self._subs.values()]

    async def _reconcile(self) -> None:
        ref = self._ref
        if ref is None:
            await trio.lowlevel.checkpoint()  # not started yet: on_start spawns the table
            return
        from ._bus_actor import Reconcile  # the actor module builds on this one

        await ref.ask(Reconcile(), timeout=self.retry.timeout)

    # ------------------------------------------------------------------ publishing

    async def publish(self, envelope: Envelope) -> None:
        """Publish through the transport (L0: delivered to the subscriptions' mailboxes)."""
        if not isinstance(envelope, Envelope):
            raise SchemaError(f"the bus publishes Envelopes, got {type(envelope).__name__}")
        self._published += 1
        await self.transport.publish(envelope)

    async def _publish_from_actor(self, event: Any, actor_path: str) -> None:
        """``ctx.publish``: an Envelope as is, a registered payload wrapped in a new one."""
        if not isinstance(event, Envelope):
            event = Envelope.new(event, actor_id=actor_path, registry=self._registry)
        await self.publish(event)

    async def _accept(self, envelope: Envelope) -> None:
        """The bus's transport sink: ``deliver`` with ``wait=sink_waits``."""
        await self.deliver(envelope, wait=self.sink_waits)

    async def deliver(self, envelope: Envelope, *, wait: bool = True) -> None:
        """Hand ``envelope`` to every matching subscription (the :data:`EventSink` of a relay).

        With ``wait=True`` (the default) it returns once every matching
        subscription has finished with it: handled, dead-lettered, dropped by
        its own mailbox policy, or unsubscribed meanwhile. A normal return
        therefore means no subscription still owes the event, so a relay may
        mark it delivered. It raises :class:`ActorStopped` if the bus (or a
        subscription) stopped with the event unfinished and
        :class:`MailboxFull` if a ``FAIL`` mailbox refused it; the envelope
        should then be delivered again (subscriptions that had it may see it
        twice: at least once).

        With ``wait=False`` it returns once every subscription has accepted
        the envelope into its mailbox (waiting for room in ``BLOCK``
        mailboxes: backpressure). The sink on an in-memory transport uses
        this, so an actor publishing an event it subscribes to itself cannot
        deadlock; on a durable transport the sink waits.

        In strict mode the envelope is encoded first (SchemaError before any
        delivery if it cannot travel). Waits up to ``retry.timeout`` seconds
        for a restarting bus actor, then raises ActorStopped.
        """
        if self._actor is None:
            await self._wait_running()
        self._delivered += 1
        routes = self._routes.get(envelope.event_type)
        if routes is None:
            routes = self._route(envelope.event_type)
        if not routes:
            await trio.lowlevel.checkpoint()
            return
        data = None
        if self.strict:
            data = encode(envelope, registry=self._registry, max_size=self._max_size)
        hashed = key_hash(envelope)
        ticket = Ticket() if wait else None
        refused: MailboxFull | None = None
        hook = self.delivery_hook
        context = None if hook is None else hook.capture()
        for sub in routes:
            copy = envelope
            if data is not None:
                copy = decode(data, registry=self._registry, max_size=self._max_size)
            delivery = Delivery(copy, hashed, sub, ticket, context)
            error = await self._offer(sub, delivery)
            if error is not None and refused is None:
                refused = error
        if ticket is not None and ticket.remaining:
            await ticket.done.wait()
        else:
            await trio.lowlevel.checkpoint()
        if ticket is not None and ticket.error is not None:
            raise ticket.error
        if refused is not None:
            raise refused

    async def _offer(self, sub: Subscription, delivery: Delivery) -> MailboxFull | None:
        """Queue ``delivery`` in the subscription's mailbox under its overflow policy."""
        ref = sub.ref
        if ref is None:  # the bus actor is between incarnations
            delivery.settle(Outcome.ABANDONED)
            return None
        try:
            # Fast path; drop policies and stopped actors settle it via the dead letters.
            ref.tell(delivery)
        except MailboxFull as exc:
            if sub.mailbox.overflow is Overflow.BLOCK:
                try:
                    await ref.send(delivery)
                except BaseException:
                    # Cancelled while waiting for room (or, rarely, at the checkpoint
                    # just after queueing it: then it is handled, yet counted abandoned).
                    delivery.settle(Outcome.ABANDONED)
                    raise
            else:
                delivery.settle(Outcome.REFUSED, exc)
                return exc
        return None

    def _route(self, event_type: str) -> tuple[Subscription, ...]:
        routes = tuple(s for s in self._subs.values() if matches(s.pattern, event_type))
        self._routes[event_type] = routes
        return routes

    async def _wait_running(self) -> None:
        with trio.move_on_after(self.retry.timeout):
            await self._ready.wait()
        if self._actor is None:
            raise ActorStopped(self.path or self.name)

    # ------------------------------------------------------------------ consumer groups (L2)

    async def _attach(self, sub: Subscription) -> None:
        """Give ``sub`` its own consumer on a :class:`GroupTransport`."""
        transport: GroupTransport = self.transport  # type: ignore[assignment]  # _grouped
        if sub.group is not None:
            spec = ConsumerGroup(consumer_name(sub.group, sub.pattern), sub.pattern, sub.group)
        else:
            # Per process: every node's subscriber gets every event, from now on.
            label = _NOT_IN_NAMES.sub("_", f"{self.name}-{sub.name}")[:100]
            spec = ConsumerGroup(f"{label}-{uuid.uuid4().hex[:12]}", sub.pattern, None, False)
        sub.consumer = spec.name
        await transport.subscribe_group(spec, _GroupSink(self, sub))

    async def _detach(self, sub: Subscription) -> None:
        if sub.consumer:
            transport: GroupTransport = self.transport  # type: ignore[assignment]  # _grouped
            await transport.unsubscribe_group(sub.consumer)
            sub.consumer = ""

    async def _offer_to(self, sub: Subscription, envelope: Envelope) -> Ticket | None:
        """Queue ``envelope`` for ``sub`` alone; the ticket settles once it is handled."""
        if self._actor is None:
            await self._wait_running()
        self._delivered += 1
        if sub.removed:
            await trio.lowlevel.checkpoint()
            return None
        if self.strict:
            data = encode(envelope, registry=self._registry, max_size=self._max_size)
            envelope = decode(data, registry=self._registry, max_size=self._max_size)
        ticket = Ticket()
        await self._offer(sub, Delivery(envelope, key_hash(envelope), sub, ticket))
        return ticket

    async def _give_up(self, sub: Subscription, envelope: Envelope, deliveries: int) -> None:
        delivery = Delivery(envelope, key_hash(envelope), sub, None)
        error = TransientError(f"delivered {deliveries} times by the stream without an outcome")
        await self._dead_letter(
            delivery, envelope, sub.path or sub.name, deliveries, error, "max_attempts"
        )

    # ------------------------------------------------------------------ failures and replay

    async def _dead_letter(
        self,
        delivery: Delivery,
        envelope: Envelope,
        subscriber: str,
        attempts: int,
        error: BaseException,
        reason: GiveUpReason,
    ) -> None:
        sub = delivery.subscription
        cause = failure_cause(error)
        try:
            entry = await self.dead_letters.log.add(
                envelope,
                pattern=sub.pattern,
                group=sub.group,
                subscriber=subscriber,
                attempts=attempts,
                error=cause,
                reason=reason,
            )
            if not isinstance(self.dead_letters.log, InMemoryDeadLetterLog):
                await self.dead_letters.statistics()  # the tree's view of a durable log
        except Exception as exc:  # a durable DLQ that is down: the event is still owed
            logger.exception("%s: could not dead-letter %s", sub.path, envelope.id)
            delivery.settle(Outcome.ABANDONED, exc)
            return
        logger.warning(
            "%s: %s %s dead-lettered after %d attempt(s) to %s: %s: %s",
            sub.path,
            envelope.event_type,
            envelope.id,
            attempts,
            subscriber,
            entry.error_type,
            entry.error_message,
        )
        delivery.settle(Outcome.DEAD_LETTERED)

    async def _hand_back(self, entry: DeadEvent) -> bool:
        """Replay: queue ``entry``'s event in its subscription again, retry count reset."""
        if entry.pattern is None or entry.subscriber is None or entry.envelope is None:
            await trio.lowlevel.checkpoint()  # not a bus entry: nothing to hand it to
            return False
        if entry.group is not None:
            key = (entry.pattern, "group", entry.group)
        else:
            key = (entry.pattern, "actor", entry.subscriber)
        sub = self._subs.get(key)
        if sub is None:
            await trio.lowlevel.checkpoint()
            return False
        if self._actor is None:
            await self._wait_running()
        envelope = dataclasses.replace(entry.envelope, retry_count=0)
        delivery = Delivery(envelope, key_hash(envelope), sub, None)
        await self._offer(sub, delivery)
        # Dropped or refused at once: keep the entry rather than lose the event.
        return delivery.outcome is None or not (
            delivery.outcome.owed or delivery.outcome is Outcome.DROPPED
        )

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        """Deliveries that the actor layer dead-lettered (dropped, or their actor stopped)."""
        item = letter.message
        if type(item) is Delivery:
            if letter.reason in _DROPS:
                item.settle(Outcome.DROPPED)
            else:
                item.settle(Outcome.ABANDONED)

    # ------------------------------------------------------------------ views

    def statistics(self) -> BusStatistics:
        """Counters since creation (shown in the tree on the bus actor)."""
        totals = self._totals
        return BusStatistics(
            subscriptions=len(self._subs),
            published=self._published,
            delivered=self._delivered,
            handled=totals.get("handled", 0),
            retries=self._retries,
            dead_lettered=totals.get("dead_lettered", 0),
            dropped=totals.get("dropped", 0),
            unsubscribed=totals.get("unsubscribed", 0),
            abandoned=totals.get("abandoned", 0) + totals.get("refused", 0),
            in_flight=sum(s.in_flight for s in self._subs.values())
            + sum(s.in_flight for s in self._retiring),
            by_subscription=tuple(s.as_dict() for s in self._subs.values()),
        )

    # ------------------------------------------------------------------ the actor's side

    async def _started(self, actor: BusActor) -> None:
        runtime = actor.ctx.system.runtime
        if self._runtime is not runtime:
            if self._unsubscribe_office is not None:
                self._unsubscribe_office()
            self._runtime = runtime
            if runtime.strict_events:
                self.strict = True  # a test system asks every bus for strict mode
            self._unsubscribe_office = runtime.dead_letters.subscribe(self._on_dead_letter)
        if self.attach_publisher:
            if runtime.publisher is None or runtime.publisher == self._publish_from_actor:
                runtime.publisher = self._publish_from_actor
            else:
                logger.warning("%s: another publisher serves ctx.publish; not attached", self.name)
        self._ref = actor.ctx.ref
        if not self._subscribed:
            if self._grouped:
                for sub in list(self._subs.values()):
                    await self._attach(sub)
            else:
                await self.transport.subscribe(self.name, self._accept)
            self._subscribed = True

    def _running(self, actor: BusActor) -> None:
        self._actor = actor
        self._ready.set()

    def _stopped(self, actor: BusActor) -> None:
        if self._actor is actor:
            self._actor = None
            self._ready = trio.Event()


class _GroupSink:
    """A :class:`~._transport.GroupSink` feeding one subscription of the bus."""

    __slots__ = ("_bus", "_sub")

    def __init__(self, bus: EventBus, sub: Subscription) -> None:
        self._bus = bus
        self._sub = sub

    async def offer(self, envelope: Envelope) -> Ticket | None:
        return await self._bus._offer_to(self._sub, envelope)

    async def give_up(self, envelope: Envelope, deliveries: int) -> None:
        await self._bus._give_up(self._sub, envelope, deliveries)

    def nak_delay(self, deliveries: int) -> float:
        bus = self._bus
        return bus.retry.delay(max(1, deliveries), bus._rng)


def _check_lanes(lanes: object) -> None:
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= _MAX_LANES:
        raise InvalidConfig("lanes", f"must be an int from 1 to {_MAX_LANES}, got {lanes!r}")


def _info(sub: Subscription) -> SubscriptionInfo:
    return SubscriptionInfo(sub.pattern, sub.group, tuple(m.path for m in sub.members), sub.path)
