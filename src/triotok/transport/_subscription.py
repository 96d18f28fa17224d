"""One subscription of the bus: its record, the deliveries it owes, and its actor.

A subscription is ``(pattern, group)`` or ``(pattern, subscriber)``. Its
actor (a child of the bus actor) receives :class:`Delivery` items in its own
mailbox, so the subscription's overflow policy applies to them, and hands
each to one of ``lanes`` sequential lane tasks chosen by the ordering key's
hash. A lane handles one delivery at a time, retries included, which is
what keeps per-key order per subscriber. The channel into a lane has no
buffer: a busy lane holds up the mailbox, so what waits is always visible
(and bounded) in the mailbox.

Every delivery is *settled* exactly once with an :class:`Outcome`; the first
outcome wins. ``deliver(wait=True)`` waits for all of its deliveries to
settle.
"""

from __future__ import annotations

import enum
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._exceptions import ActorStopped
from ..actors import Actor, ActorRef, Mailbox
from ..resilience import failure_cause
from ._envelope import Envelope
from ._routing import pick_member

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = (
    "Delivery",
    "DeliveryHook",
    "Outcome",
    "Subscription",
    "SubscriptionActor",
    "Ticket",
)

logger = logging.getLogger("triotok.bus")


class DeliveryHook(Protocol):
    """The bus's instrumentation seam (``EventBus.delivery_hook``; telemetry sets it).

    ``capture`` runs in the task calling ``deliver`` (a relay delivering a
    row, a publisher): what it returns travels with each delivery of that
    call. ``handling`` wraps each attempt to hand an envelope to a
    subscriber, in the subscription's lane task; an exception from the
    subscriber passes through it. ``consumer`` is the subscription's group,
    else its subscriber's path.
    """

    def capture(self) -> Any:
        """The delivering task's context, or ``None``."""
        ...

    def handling(
        self, envelope: Envelope, consumer: str, subscriber: str, attempt: int, context: Any
    ) -> AbstractContextManager[Any]:
        """A context manager around one attempt (telemetry: a consumer span, metrics)."""
        ...


class Outcome(enum.Enum):
    """How a subscription finished with one delivery."""

    HANDLED = "handled"  # a subscriber replied
    DEAD_LETTERED = "dead_lettered"  # in the bus's dead-letter queue
    DROPPED = "dropped"  # the subscription's mailbox policy dropped it (actor dead letters)
    UNSUBSCRIBED = "unsubscribed"  # the subscription was removed before handling it
    ABANDONED = "abandoned"  # the bus or subscription stopped with it unfinished
    REFUSED = "refused"  # a FAIL mailbox was full

    @property
    def owed(self) -> bool:
        """Whether the event still has to be delivered again (a waiting ``deliver`` raises)."""
        return self is Outcome.ABANDONED or self is Outcome.REFUSED


class Ticket:
    """Counts the unsettled deliveries of one ``deliver(wait=True)`` call."""

    __slots__ = ("done", "error", "remaining")

    def __init__(self) -> None:
        self.remaining = 0
        self.done = trio.Event()
        self.error: BaseException | None = None

    def settled(self, error: BaseException | None) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class Delivery:
    """One envelope owed by one subscription (what its mailbox holds)."""

    __slots__ = ("context", "envelope", "hashed", "outcome", "subscription", "ticket")

    def __init__(
        self,
        envelope: Envelope,
        hashed: int,
        subscription: Subscription,
        ticket: Ticket | None,
        context: Any = None,
    ) -> None:
        self.envelope = envelope
        #: What ``DeliveryHook.capture`` returned in the delivering task.
        self.context = context
        self.hashed = hashed
        self.subscription = subscription
        self.ticket = ticket
        self.outcome: Outcome | None = None
        subscription.in_flight += 1
        if ticket is not None:
            ticket.remaining += 1

    def settle(self, outcome: Outcome, error: BaseException | None = None) -> None:
        """Record the outcome (the first one wins) and release a waiting ``deliver``."""
        if self.outcome is not None:
            return
        sub = self.subscription
        if outcome is Outcome.ABANDONED and sub.removed:
            outcome = Outcome.UNSUBSCRIBED  # nobody owes an event to a removed subscription
        self.outcome = outcome
        sub.in_flight -= 1
        sub.counts[outcome.value] += 1
        sub.totals[outcome.value] = sub.totals.get(outcome.value, 0) + 1
        ticket = self.ticket
        if ticket is not None:
            if outcome.owed and error is None:
                error = ActorStopped(sub.path)
            ticket.settled(error if outcome.owed else None)

    def __repr__(self) -> str:
        env = self.envelope
        target = self.subscription.path
        return f"Delivery({env.event_type} {env.id} retry={env.retry_count} -> {target})"


_OUTCOMES = tuple(o.value for o in Outcome)


@dataclass(eq=False)
class Subscription:
    """The bus's record of one subscription; it outlives restarts of the bus actor."""

    key: tuple[str, str, str]  # (pattern, "group" | "actor", group name | subscriber path)
    name: str  # the subscription actor's name under the bus
    pattern: str
    group: str | None
    mailbox: Mailbox
    lanes: int
    members: list[ActorRef] = field(default_factory=list)
    path: str = ""  # the subscription actor's path once spawned
    ref: ActorRef | None = None  # the current incarnation's subscription actor
    removed: bool = False
    owner: object = None  # the bus actor incarnation that spawned ``ref``
    consumer: str = ""  # its consumer on a GroupTransport (L2), once attached
    totals: dict[str, int] = field(default_factory=dict)  # the bus-wide outcome counts
    in_flight: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_OUTCOMES, 0))
    retries: int = 0

    def member_for(self, hashed: int) -> ActorRef | None:
        """The subscriber this key goes to now (None once every member left)."""
        members = self.members
        if not members:
            return None
        if len(members) == 1:
            return members[0]
        return pick_member(members, [m.path for m in members], hashed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for the bus statistics in the tree)."""
        return {
            "pattern": self.pattern,
            "group": self.group,
            "subscribers": [m.path for m in self.members],
            "path": self.path,
            "lanes": self.lanes,
            "in_flight": self.in_flight,
            "retries": self.retries,
            **self.counts,
        }


class SubscriptionActor(Actor):
    """Feeds one subscription's deliveries to its subscribers, with retries (see module doc)."""

    def __init__(self, bus: EventBus, subscription: Subscription) -> None:
        self._bus = bus
        self._sub = subscription
        self._lanes: list[trio.MemorySendChannel[Delivery]] = []

    async def on_start(self) -> None:
        for _ in range(self._sub.lanes):
            send, receive = trio.open_memory_channel[Delivery](0)
            self._lanes.append(send)
            self.ctx.start_soon(self._lane, receive)

    async def receive(self, message: Any) -> Any:
        delivery: Delivery = message
        lanes = self._lanes
        await lanes[delivery.hashed % len(lanes)].send(delivery)

    async def _lane(self, receive: trio.MemoryReceiveChannel[Delivery]) -> None:
        async for delivery in receive:
            try:
                await self._handle(delivery)
            except Exception as exc:  # a bug of ours: settle, never crash the lane
                logger.exception("%s: delivery failed inside the bus", self._sub.path)
                delivery.settle(Outcome.ABANDONED, exc)
            except BaseException:
                # Cancelled (the subscription or the bus is stopping) mid-delivery.
                delivery.settle(Outcome.ABANDONED)
                raise

    async def _handle(self, delivery: Delivery) -> None:
        bus, sub = self._bus, self._sub
        policy = bus.retry
        envelope = delivery.envelope
        attempt = 0
        while True:
            attempt += 1
            target = sub.member_for(delivery.hashed)
            if target is None:
                delivery.settle(Outcome.UNSUBSCRIBED)
                return
            hook = bus.delivery_hook
            try:
                if hook is None:
                    await target.ask(envelope, timeout=policy.timeout)
                else:
                    consumer = sub.group or target.path
                    with hook.handling(envelope, consumer, target.path, attempt, delivery.context):
                        await target.ask(envelope, timeout=policy.timeout)
            except Exception as exc:
                decision = policy.decide(attempt, exc, bus._rng)
                if decision.dead_letter is not None:
                    await bus._dead_letter(
                        delivery, envelope, target.path, attempt, exc, decision.dead_letter
                    )
                    return
                sub.retries += 1
                bus._retries += 1
                logger.debug(
                    "%s: attempt %d of %s to %s failed (%s); retrying",
                    sub.path,
                    attempt,
                    envelope.event_type,
                    target.path,
                    type(failure_cause(exc)).__name__,
                )
                await trio.sleep(decision.delay)
                envelope = envelope.with_retry()
                continue
            delivery.settle(Outcome.HANDLED)
            return
