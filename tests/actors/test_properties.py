"""Property tests of the actor system: no message is ever silently lost.

An :class:`~triotok.testing.ActorStateMachine` drives five workers under one
supervisor (a small mailbox with each overflow policy, plus a roomy one)
with tells, sends, asks, background sends blocked on backpressure, crashes,
slow messages, stops, re-spawns and the passing of time.  Every message
carries a unique id; the model knows which worker each id went to and what
the caller saw, the workers journal what they started and finished, and a
dead-letter subscriber records every dead letter.  After every step:

- each id is handled at most once, dead-lettered at most once, never both;
- per worker: sent = processed + dead-lettered + refused + still queued
  (+ the one being handled, + sends still waiting for room), matching
  ``ref.statistics()`` (depth, processed, failed, dropped);
- restarts stay within the supervisor's intensity in its period, and an
  escalation needs more than ``intensity`` crashes;
- ``system.tree()`` shows exactly the live workers, each running or in
  backoff, and stopped refs report ``stopped``;
- after an escalation the supervisor holds exactly its spec's workers again:
  a stopped one is back as a new node, a re-spawned (dynamic) one is closed
  and replaced by a new node, the others keep their refs.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from triotok import Actor, ActorRef
from triotok.actors import (
    ActorCrashed,
    ActorError,
    ActorStopped,
    DeadLetter,
    Mailbox,
    MailboxFull,
    Overflow,
)
from triotok.supervision import Backoff, ChildSpec, Strategy, SupervisorRef, SupervisorSpec
from triotok.testing import ActorStateMachine

#: Far beyond any wait an example can build up: an AskTimeout here is a hang.
ASK_TIMEOUT = 600.0
PERIOD = 5.0

MAILBOXES = {
    "block": Mailbox(capacity=3, overflow=Overflow.BLOCK),
    "drop-new": Mailbox(capacity=3, overflow=Overflow.DROP_NEW),
    "drop-old": Mailbox(capacity=3, overflow=Overflow.DROP_OLD),
    "fail": Mailbox(capacity=3, overflow=Overflow.FAIL),
    "roomy": Mailbox(capacity=1000),
}
NAMES = st.sampled_from(sorted(MAILBOXES))
KINDS = st.sampled_from(["ok", "ok", "ok", "slow", "crash"])
DELAYS = st.sampled_from([0.1, 0.5, 2.0])


@dataclass(frozen=True)
class Msg:
    id: int
    kind: str  # ok | slow | crash
    delay: float = 0.0


@dataclass
class Journal:
    """What workers started and finished, across all incarnations."""

    started: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)


class Worker(Actor):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def receive(self, msg: Msg) -> int:
        self.journal.started.add(msg.id)
        if msg.kind == "crash":
            raise ValueError(f"crash on {msg.id}")
        if msg.kind == "slow":
            await trio.sleep(msg.delay)
        self.journal.done.add(msg.id)
        return msg.id


@dataclass
class Target:
    """One worker incarnation chain (a name may be re-spawned as a new cell)."""

    name: str
    ref: ActorRef
    overflow: Overflow
    ids: set[int] = field(default_factory=set)
    refused: set[int] = field(default_factory=set)  # caller got MailboxFull, nothing queued
    waiting: set[int] = field(default_factory=set)  # background sends not returned yet
    stopped: bool = False
    dynamic: bool = False  # added by start_child: gone when the supervisor restarts


class ActorSystemMachine(ActorStateMachine):
    system_options: ClassVar[dict[str, Any]] = {"intensity": 1000, "period": 1.0}

    @initialize(strategy=st.sampled_from(Strategy), intensity=st.integers(1, 4))
    async def start(self, strategy: Strategy, intensity: int) -> None:
        self.journal = Journal()
        self.dead: defaultdict[int, list[str]] = defaultdict(list)
        self.dead_elsewhere: list[DeadLetter] = []
        self.system.dead_letters.subscribe(self._on_dead_letter)
        self.ids = itertools.count()
        self.strategy, self.intensity = strategy, intensity
        spec = SupervisorSpec(
            "workers",
            [self._child(name) for name in MAILBOXES],
            strategy=strategy,
            intensity=intensity,
            period=PERIOD,
            backoff=Backoff(min=0.1, max=0.4, jitter=0.0),
        )
        self.sup: SupervisorRef = await self.system.spawn_supervisor(spec)
        self.targets: dict[str, Target] = {}
        self.history: list[Target] = []
        for name in MAILBOXES:
            self._track(name)
        self.escalations = 0

    def _child(self, name: str) -> ChildSpec:
        return ChildSpec(name, Worker, (self.journal,), mailbox=MAILBOXES[name])

    def _track(self, name: str) -> None:
        ref = self.system.ref(f"/test/workers/{name}")
        target = Target(name, ref, MAILBOXES[name].overflow)
        self.targets[name] = target
        self.history.append(target)

    def _sync_escalations(self) -> None:
        """Apply a completed escalation to the model: the spec's workers are back."""
        restarts = self.system.tree(prefix="/test/workers", depth=0)["restarts"]
        if restarts == self.escalations:
            return
        self.escalations = restarts
        for name, target in list(self.targets.items()):
            if target.stopped or target.dynamic:
                target.stopped = True
                self._track(name)
            assert self.system.ref(f"/test/workers/{name}") == self.targets[name].ref

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        if isinstance(letter.message, Msg):
            self.dead[letter.message.id].append(letter.reason.value)
        else:
            self.dead_elsewhere.append(letter)

    def _new(self, name: str, kind: str, delay: float) -> tuple[Target, Msg]:
        target = self.targets[name]
        msg = Msg(next(self.ids), kind, delay if kind == "slow" else 0.0)
        target.ids.add(msg.id)
        return target, msg

    def _refused(self, target: Target, msg: Msg) -> None:
        """The caller got MailboxFull: either nothing was queued, or it was dead-lettered."""
        reasons = self.dead.get(msg.id)
        if reasons is None:
            assert target.overflow in (Overflow.BLOCK, Overflow.FAIL), target
            target.refused.add(msg.id)
        else:
            assert target.overflow in (Overflow.DROP_NEW, Overflow.DROP_OLD), target
            assert reasons in (["mailbox_full"], ["dropped_oldest"]), reasons

    def _in_hand(self) -> set[int]:
        """Messages some worker is handling right now (sleeping in a slow message)."""
        dead = self.dead.keys()
        return self.journal.started - self.journal.done - dead

    # ------------------------------------------------------------------ rules

    @rule(name=NAMES, kind=KINDS, delay=DELAYS)
    def tell(self, name: str, kind: str, delay: float) -> None:
        target, msg = self._new(name, kind, delay)
        try:
            target.ref.tell(msg)
        except MailboxFull:
            self._refused(target, msg)

    @rule(name=NAMES, kinds=st.lists(KINDS, min_size=2, max_size=6), delay=DELAYS)
    def burst(self, name: str, kinds: list[str], delay: float) -> None:
        """Several tells with no checkpoint between them: the mailbox fills up."""
        for kind in kinds:
            self.tell(name, kind, delay)

    @rule(name=NAMES, kind=KINDS, delay=DELAYS)
    async def send(self, name: str, kind: str, delay: float) -> None:
        target, msg = self._new(name, kind, delay)
        try:
            await target.ref.send(msg)
        except MailboxFull:
            self._refused(target, msg)

    @rule(name=NAMES, kind=KINDS, delay=DELAYS)
    def send_in_background(self, name: str, kind: str, delay: float) -> None:
        target, msg = self._new(name, kind, delay)
        target.waiting.add(msg.id)

        async def send() -> None:
            try:
                await target.ref.send(msg)
            except MailboxFull:
                self._refused(target, msg)
            finally:
                target.waiting.discard(msg.id)

        self.system.start_soon(send)

    @rule(name=NAMES, kind=KINDS, delay=DELAYS)
    async def ask(self, name: str, kind: str, delay: float) -> None:
        target, msg = self._new(name, kind, delay)
        try:
            reply = await target.ref.ask(msg, timeout=ASK_TIMEOUT)
        except ActorCrashed as exc:
            crashed_at = exc.path
            assert self.dead[msg.id] == ["crashed"]
            assert crashed_at == target.ref.path
        except ActorStopped:
            assert self.dead[msg.id] == ["stopped"]
        except MailboxFull:
            self._refused(target, msg)
        else:
            assert reply == msg.id
            assert msg.id in self.journal.done

    def _stoppable(self) -> list[str]:
        # Includes workers their supervisor stopped only to restart them: a
        # ref.stop() then must still stop them for good.
        return sorted(name for name, t in self.targets.items() if not t.stopped)

    @precondition(lambda self: self._stoppable())
    @rule(data=st.data())
    async def stop(self, data: st.DataObject) -> None:
        target = self.targets[data.draw(st.sampled_from(self._stoppable()), label="name")]
        await target.ref.stop()
        target.stopped = True
        assert target.ref.statistics().state == "stopped"

    @precondition(lambda self: any(t.stopped for t in self.targets.values()))
    @rule(data=st.data())
    async def respawn(self, data: st.DataObject) -> None:
        stopped = sorted(n for n, t in self.targets.items() if t.stopped)
        name = data.draw(st.sampled_from(stopped), label="name")
        if self.sup.statistics().state != "running":
            # Escalating: a child added to an ending incarnation is refused.
            with pytest.raises(ActorError, match="is not running"):
                await self.sup.start_child(self._child(name))
            return
        ref = await self.sup.start_child(self._child(name))
        self._track(name)
        self.targets[name].dynamic = True
        assert self.targets[name].ref == ref

    @rule(seconds=st.sampled_from([0.05, 0.2, 1.0, 6.0]))
    async def let_time_pass(self, seconds: float) -> None:
        await self.system.advance(seconds)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def no_message_is_lost(self) -> None:
        self._sync_escalations()
        assert not self.dead_elsewhere
        for msg_id, reasons in self.dead.items():
            assert len(reasons) == 1, (msg_id, reasons)
            assert msg_id not in self.journal.done, (msg_id, reasons)
        for target in self.history:
            ids = target.ids
            done = ids & self.journal.done
            dead = {i: self.dead[i][0] for i in ids if i in self.dead}
            assert not target.refused & (done | dead.keys()), target
            in_hand = ids & self._in_hand()
            assert len(in_hand) <= 1, (target.name, in_hand)
            pending = ids - done - dead.keys() - target.refused - target.waiting
            stats = target.ref.statistics()
            assert stats.mailbox_depth + len(in_hand) == len(pending), (target, stats)
            reasons = Counter(dead.values())
            assert stats.failed == reasons["crashed"], (stats, reasons)
            assert stats.dropped == reasons["mailbox_full"] + reasons["dropped_oldest"]
            if in_hand:  # counted when its batch ends
                assert stats.processed <= len(done)
            else:
                assert stats.processed == len(done), (stats, len(done))
            if target.stopped:
                assert stats.state == "stopped"
                assert stats.mailbox_depth == 0
                assert not in_hand

    @invariant()
    def restarts_stay_within_intensity(self) -> None:
        self._sync_escalations()
        for node in self.system.nodes():
            if node["kind"] == "supervisor" and node["state"] == "running":
                assert node["restarts_in_period"] <= node["intensity"], node
            elif node["kind"] == "supervisor":
                # Stopping children for a restart: only a message in hand delays that.
                assert node["state"] == "stopping", node
                assert self._in_hand(), node
        crashes = sum(t.ref.statistics().failed for t in self.history)
        sup = self.system.tree(prefix="/test/workers")
        escalations = sup["restarts"]
        assert escalations * (self.intensity + 1) <= crashes, (escalations, crashes)
        quiet = escalations == 0 and sup["state"] == "running"  # no escalation, none under way
        if quiet and self.strategy is Strategy.ONE_FOR_ONE:
            for target in self.history:
                stats = target.ref.statistics()
                if target.stopped:
                    assert stats.restarts <= stats.failed
                else:
                    backoff = stats.state == "backoff"
                    assert stats.restarts + backoff == stats.failed, stats

    @invariant()
    async def tree_shows_the_live_workers(self) -> None:
        await self.system.settle()  # already settled: a no-op, but invariants may await
        self._sync_escalations()
        sup = self.system.tree(prefix="/test/workers")
        children = {child["name"]: child for child in sup["children"]}
        live = {n for n, t in self.targets.items() if not t.stopped}
        assert set(children) == live
        for name, child in children.items():
            assert child["kind"] == "actor"
            assert child["path"] == f"/test/workers/{name}"
            if self._in_hand():  # a group restart may be waiting for that message
                assert child["state"] in ("running", "backoff", "stopping", "stopped"), child
            else:
                assert child["state"] in ("running", "backoff"), child
            assert self.system.ref(child["path"]) == self.targets[name].ref
        for target in self.history:
            if target.stopped:
                assert target.ref.statistics().state == "stopped"


ActorSystemMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestActorSystem = ActorSystemMachine.TestCase
