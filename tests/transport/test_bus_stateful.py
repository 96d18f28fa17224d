"""A hypothesis state machine over a live bus: every event, per subscription, ends exactly once.

Subscriptions: ``solo`` (``"*"``, one actor), ``products`` (``"product.*"``,
one actor) and the group ``workers`` (``"*"``, two members). Rules publish,
switch how subscribers fail, let time pass and replay the dead-letter queue.

Invariants, per (subscription, event) with ``h`` successful hand-overs, ``d``
dead-letterings and ``r`` replays:

- never more endings than deliveries: ``h + d <= 1 + r`` (so never both
  handled and dead-lettered without a replay);
- once the bus has nothing in flight, ``h + d == 1 + r`` (nothing lost);
- per subscription and key, first hand-overs follow publish order;
- within the group, one key is always handled by the same member.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from triotok.store import ConflictError
from triotok.supervision import Backoff
from triotok.testing import ActorStateMachine
from triotok.transport import (
    BusActor,
    Envelope,
    EventBus,
    PermanentError,
    RetryPolicy,
    TransientError,
)

from .test_bus_support import REGISTRY, OrderPaid, ProductCreated, Recorder, Seen, env

MODES = ("ok", "transient", "permanent", "flaky")
SUBSCRIBERS = {"solo": "solo", "products": "products", "w0": "workers", "w1": "workers"}


class Modes:
    """How each subscriber handles events now (shared by all incarnations)."""

    def __init__(self) -> None:
        self.mode = dict.fromkeys(SUBSCRIBERS, "ok")

    def script(self, name: str) -> Any:
        def decide(envelope: Envelope) -> BaseException | None:
            mode = self.mode[name]
            if mode == "transient" or (mode == "flaky" and envelope.retry_count == 0):
                return TransientError(mode)
            if mode == "permanent":
                return PermanentError(mode)
            return None

        return decide


class BusMachine(ActorStateMachine):
    system_options = {"intensity": 1_000_000, "period": 1.0}

    @initialize()
    async def start(self) -> None:
        self.log: list[Seen] = []
        self.modes = Modes()
        policy = RetryPolicy(attempts=3, backoff=Backoff(min=0.1, max=1.0, jitter=0.0))
        self.bus = EventBus(registry=REGISTRY, retry=policy, lanes=2)
        await self.system.spawn(BusActor, self.bus, name="bus")
        self.refs = {}
        for name, sub in SUBSCRIBERS.items():
            ref = await self.system.spawn(Recorder, self.log, self.modes.script(name), name=name)
            self.refs[name] = ref
            if sub == "workers":
                await self.bus.subscribe("*", ref, group="workers")
            else:
                await self.bus.subscribe("product.*" if sub == "products" else "*", ref)
        self.published: list[Envelope] = []
        self.dead: dict[int, tuple[str, Any]] = {}  # DLQ entry id -> (subscription, event id)
        self.replays: Counter[tuple[str, Any]] = Counter()

    # ------------------------------------------------------------------ rules

    @rule(key=st.sampled_from(["a", "b", "c"]), product=st.booleans())
    async def publish(self, key: str, product: bool) -> None:
        n = len(self.published)
        payload = ProductCreated(key, n) if product else OrderPaid(key, n)
        envelope = env(payload)
        self.published.append(envelope)
        await self.bus.publish(envelope)

    @rule(name=st.sampled_from(sorted(SUBSCRIBERS)), mode=st.sampled_from(MODES))
    def set_mode(self, name: str, mode: str) -> None:
        self.modes.mode[name] = mode

    @rule(seconds=st.sampled_from([0.05, 0.3, 5.0]))
    async def wait(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @precondition(lambda self: self.dead)
    @rule()
    async def replay_all(self) -> None:
        await self._collect_dead()
        for entry in await self.bus.dead_letters.list(limit=10_000):
            try:
                await self.bus.dead_letters.replay(entry.id)
            except ConflictError:
                continue  # refused (mailbox full): the entry stays
            self.replays[self.dead[entry.id]] += 1

    @rule()
    async def drain(self) -> None:
        for name in self.modes.mode:
            self.modes.mode[name] = "ok"
        await self.system.advance(30)
        assert self.bus.statistics().in_flight == 0
        await self._collect_dead()
        for pair, (handled, dead, replays) in self._tally().items():
            assert handled + dead == 1 + replays, pair

    # ------------------------------------------------------------------ invariants

    @invariant()
    async def at_most_one_ending_per_delivery(self) -> None:
        await self._collect_dead()
        for pair, (handled, dead, replays) in self._tally().items():
            assert handled + dead <= 1 + replays, pair

    @invariant()
    def per_key_order(self) -> None:
        firsts: dict[tuple[str, str], list[int]] = defaultdict(list)
        seen: set[tuple[str, Any]] = set()
        for s in self.log:
            sub = SUBSCRIBERS[s.path.rsplit("/", 1)[-1]]
            if s.ok and (sub, s.envelope.id) not in seen:
                seen.add((sub, s.envelope.id))
                if not self.replays[sub, s.envelope.id]:
                    firsts[sub, s.key].append(s.n)
        for numbers in firsts.values():
            assert numbers == sorted(numbers)

    @invariant()
    def one_member_per_key(self) -> None:
        members: dict[str, set[str]] = defaultdict(set)
        for s in self.log:
            if SUBSCRIBERS[s.path.rsplit("/", 1)[-1]] == "workers":
                members[s.key].add(s.path)
        assert all(len(paths) == 1 for paths in members.values())

    # ------------------------------------------------------------------ helpers

    async def _collect_dead(self) -> None:
        for entry in await self.bus.dead_letters.list(limit=10_000):
            assert entry.subscriber is not None
            assert entry.envelope is not None
            sub = "workers" if entry.group else SUBSCRIBERS[entry.subscriber.rsplit("/", 1)[-1]]
            self.dead.setdefault(entry.id, (sub, entry.envelope.id))

    def _tally(self) -> dict[tuple[str, Any], tuple[int, int, int]]:
        handled: Counter[tuple[str, Any]] = Counter()
        for s in self.log:
            if s.ok:
                handled[SUBSCRIBERS[s.path.rsplit("/", 1)[-1]], s.envelope.id] += 1
        dead = Counter(self.dead.values())
        out = {}
        for envelope in self.published:
            for sub in ("solo", "products", "workers"):
                if sub == "products" and not envelope.event_type.startswith("product."):
                    continue
                pair = (sub, envelope.id)
                out[pair] = (handled[pair], dead[pair], self.replays[pair])
        return out


BusMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBusMachine = BusMachine.TestCase
