"""A hypothesis state machine over a live entities region.

Random bursts of concurrent commands across many keys, crashing commands,
poison entities (crashing on every activation) and their cure, idle time and
operators' passivations.  Invariants: every command is answered exactly once
(its reply or a typed error), the commands each entity handled are exactly
those answered with a reply, in the order they were sent, and no key ever
has two activations at once.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from triotok import Actor
from triotok.actors import ActorCrashed
from triotok.supervision import Entities, EntitiesRef, EntityPoisoned
from triotok.testing import ActorStateMachine

KEYS = st.integers(0, 7)
MAX_ACTIVE = 3


class World:
    def __init__(self) -> None:
        self.live: dict[Hashable, int] = defaultdict(int)
        self.overlaps: list[Hashable] = []
        self.handled: dict[Hashable, list[int]] = defaultdict(list)
        self.poison: set[Hashable] = set()


class Probe(Actor):
    def __init__(self, key: Hashable, world: World) -> None:
        self.key, self.world = key, world

    async def on_start(self) -> None:
        if self.key in self.world.poison:
            raise RuntimeError(f"poisoned {self.key}")
        self.world.live[self.key] += 1
        if self.world.live[self.key] > 1:
            self.world.overlaps.append(self.key)

    async def on_stop(self) -> None:
        self.world.live[self.key] -= 1

    async def receive(self, message: Any) -> Any:
        kind, seq = message
        if kind == "crash":
            raise ValueError(f"crash {seq}")
        self.world.handled[self.key].append(seq)
        return seq


class EntitiesMachine(ActorStateMachine):
    @initialize()
    async def start(self) -> None:
        self.world = World()
        spec = Entities(
            "probes",
            factory=functools.partial(Probe, world=self.world),
            idle=30.0,
            max_active=MAX_ACTIVE,
            intensity=2,
            period=10.0,
        )
        self.region: EntitiesRef = await self.system.spawn_entities(spec)
        self.seqs = itertools.count()
        self.sent: dict[Hashable, list[tuple[int, str]]] = defaultdict(list)
        self.answers: dict[int, list[Any]] = defaultdict(list)
        self.may_be_poisoned: set[Hashable] = set()

    @rule(
        commands=st.lists(
            st.tuples(KEYS, st.sampled_from(["add", "add", "add", "crash"])),
            min_size=1,
            max_size=12,
        )
    )
    async def burst(self, commands: list[tuple[int, str]]) -> None:
        async def command(key: int, kind: str) -> None:
            seq = next(self.seqs)
            # Recorded in the same step as the ask queues the command: sent order.
            self.sent[key].append((seq, kind))
            if kind == "crash":  # enough of them poison the key too
                self.may_be_poisoned.add(key)
            try:
                answer: Any = await self.region.ask(key, (kind, seq), timeout=60)
            except (ActorCrashed, EntityPoisoned) as exc:
                answer = type(exc)
            self.answers[seq].append(answer)

        async with trio.open_nursery() as nursery:
            for key, kind in commands:
                nursery.start_soon(command, key, kind)
        await self.system.advance(0.1)  # lets a deferred LRU trim run

    @rule(seconds=st.floats(0, 100))
    async def idle(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @rule(key=KEYS)
    async def passivate(self, key: int) -> None:
        await self.region.passivate(key)

    @rule(key=KEYS)
    def poison(self, key: int) -> None:
        self.world.poison.add(key)
        self.may_be_poisoned.add(key)

    @rule(key=KEYS)
    async def cure(self, key: int) -> None:
        self.world.poison.discard(key)
        await self.region.restart(key)
        self.may_be_poisoned.discard(key)

    @invariant()
    def every_command_answered_exactly_once(self) -> None:
        sent = sum(len(v) for v in self.sent.values())
        assert len(self.answers) == sent
        for seq, answers in self.answers.items():
            assert len(answers) == 1, (seq, answers)

    @invariant()
    def answers_are_replies_or_typed_errors(self) -> None:
        for key, sent in self.sent.items():
            for seq, kind in sent:
                (answer,) = self.answers[seq]
                if kind == "add":
                    assert answer == seq or answer is EntityPoisoned, (key, seq, answer)
                else:
                    assert answer in (ActorCrashed, EntityPoisoned), (key, seq, answer)

    @invariant()
    def per_key_order_holds(self) -> None:
        for key, sent in self.sent.items():
            replied = [seq for seq, kind in sent if kind == "add" and self.answers[seq] == [seq]]
            assert self.world.handled[key] == replied

    @invariant()
    def at_most_one_activation_per_key(self) -> None:
        assert self.world.overlaps == []
        assert all(n in (0, 1) for n in self.world.live.values())

    @invariant()
    def region_counts_agree(self) -> None:
        stats = self.region.statistics()
        assert stats.active == sum(self.world.live.values())
        assert stats.passivating == 0
        assert stats.active <= MAX_ACTIVE
        assert stats.mailbox_depth == 0
        assert set(self.region.poisoned_keys()) <= self.may_be_poisoned
        assert self.system.tree(prefix="/test/probes", depth=0)["state"] == "running"


EntitiesMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
TestEntities = EntitiesMachine.TestCase
