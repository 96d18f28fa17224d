"""ActorStateMachine: async rules, invariants and initializers on a live system, in hypothesis."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, ClassVar

import pytest
import trio
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from triotok import Actor, ActorRef
from triotok.supervision import SupervisorFailed
from triotok.testing import ActorStateMachine

FAST = settings(
    max_examples=10,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def run(machine: type[ActorStateMachine], config: settings = FAST) -> None:
    run_state_machine_as_test(machine, settings=config)


class Counter_(Actor):
    """Adds numbers; replies with the running total."""

    def __init__(self) -> None:
        self.total = 0

    async def receive(self, message: Any) -> int:
        if message == "boom":
            raise ValueError("boom")
        self.total += message
        return self.total


class Slow(Actor):
    """Replies after sleeping ``message`` seconds."""

    async def receive(self, message: float) -> float:
        await trio.sleep(message)
        return message


# ---------------------------------------------------------------------- steps run


class CallsMachine(ActorStateMachine):
    """Every kind of step, sync and async, with preconditions in both decorator orders."""

    calls: ClassVar[Counter[str]] = Counter()

    @initialize()
    async def start(self) -> None:
        self.calls["initialize"] += 1
        self.counter = await self.system.spawn(Counter_, name="counter")
        self.total = 0
        assert threading.current_thread() is not threading.main_thread()

    @rule(n=st.integers(0, 10))
    async def add(self, n: int) -> None:
        self.calls["async rule"] += 1
        self.total += n
        assert await self.counter.ask(n) == self.total

    @rule()
    def tell_zero(self) -> None:
        self.calls["sync rule"] += 1
        self.counter.tell(0)  # sync rules run on the trio thread too

    @precondition(lambda self: self.total > 5)
    @rule()
    async def guarded_outer(self) -> None:
        self.calls["precondition over rule"] += 1
        assert self.total > 5

    @rule()
    @precondition(lambda self: self.total > 5)
    async def guarded_inner(self) -> None:
        self.calls["rule over precondition"] += 1
        assert self.total > 5

    @invariant()
    async def total_matches(self) -> None:
        self.calls["async invariant"] += 1
        assert self.counter.statistics().mailbox_depth == 0
        assert await self.counter.ask(0) == self.total

    @precondition(lambda self: self.total > 0)
    @invariant()
    def positive(self) -> None:
        self.calls["sync invariant"] += 1
        assert self.total > 0


def test_async_and_sync_steps_all_run() -> None:
    CallsMachine.calls.clear()
    run(CallsMachine, settings(FAST, max_examples=30))
    assert set(CallsMachine.calls) == {
        "initialize",
        "async rule",
        "sync rule",
        "precondition over rule",
        "rule over precondition",
        "async invariant",
        "sync invariant",
    }


class TimeMachine(ActorStateMachine):
    """Autojump during steps; the clock stands still between them."""

    @initialize()
    async def start(self) -> None:
        self.slow = await self.system.spawn(Slow, name="slow")
        self.last = trio.current_time()

    @rule(seconds=st.sampled_from([0.5, 60.0, 3000.0]))
    async def wait(self, seconds: float) -> None:
        assert trio.current_time() == self.last  # nothing moved between steps
        assert await self.slow.ask(seconds, timeout=seconds * 2) == seconds
        self.last = trio.current_time()

    @rule(seconds=st.sampled_from([0.25, 10.0]))
    async def advance(self, seconds: float) -> None:
        before = trio.current_time()
        await self.system.advance(seconds)
        assert trio.current_time() == before + seconds
        self.last = trio.current_time()

    @invariant()
    def clock_is_the_run_clock(self) -> None:
        assert trio.lowlevel.current_clock() is self.clock
        assert self.clock.autojump_threshold == 0  # on during steps


def test_virtual_time_costs_no_real_time() -> None:
    started = time.perf_counter()
    run(TimeMachine)
    assert time.perf_counter() - started < 10  # 10 examples x 8 steps of up to 3000 s each


# ---------------------------------------------------------------------- failures


class FailingRule(ActorStateMachine):
    @rule()
    async def explode(self) -> None:
        await trio.sleep(1)
        raise KeyError("from an async rule")


def test_an_error_in_a_rule_fails_with_its_traceback() -> None:
    with pytest.raises(KeyError, match="from an async rule") as excinfo:
        run(FailingRule)
    assert any(entry.name == "explode" for entry in excinfo.traceback)
    notes = "\n".join(getattr(excinfo.value, "__notes__", []))
    assert "state.explode()" in notes


class FailingInvariant(ActorStateMachine):
    @rule()
    def noop(self) -> None:
        pass

    @invariant()
    async def never(self) -> None:
        await trio.lowlevel.checkpoint()
        raise AssertionError("invariant broken")


def test_an_error_in_an_invariant_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="invariant broken"):
        run(FailingInvariant)


class HungRule(ActorStateMachine):
    step_limit = 30.0

    @rule()
    async def hang(self) -> None:
        await trio.Event().wait()  # nobody ever sets it


def test_a_hung_rule_fails_after_the_virtual_step_limit() -> None:
    started = time.perf_counter()
    with pytest.raises(TimeoutError, match="virtual time"):
        run(HungRule, settings(FAST, max_examples=2, phases=[Phase.generate]))
    assert time.perf_counter() - started < 10


class HungAsk(ActorStateMachine):
    @initialize()
    async def start(self) -> None:
        self.slow = await self.system.spawn(Slow, name="slow")

    @rule()
    async def ask_too_slow(self) -> None:
        await self.slow.ask(100.0, timeout=5.0)


def test_ask_timeouts_fire_under_autojump() -> None:
    from triotok.actors import AskTimeout

    with pytest.raises(AskTimeout):
        run(HungAsk, settings(FAST, max_examples=2, phases=[Phase.generate]))


class RootFailure(ActorStateMachine):
    system_options: ClassVar[dict[str, Any]] = {"intensity": 0}

    @initialize()
    async def start(self) -> None:
        self.counter = await self.system.spawn(Counter_, name="counter")

    @rule()
    def crash(self) -> None:
        self.counter.tell("boom")

    @rule()
    def noop(self) -> None:
        pass


def test_a_failed_root_supervisor_fails_the_example() -> None:
    with pytest.raises(SupervisorFailed):
        run(RootFailure, settings(FAST, phases=[Phase.generate]))


# ---------------------------------------------------------------------- shrinking


class LossyCounter(Actor):
    """Planted bug: the fourth add of an odd number is lost."""

    def __init__(self) -> None:
        self.total = 0
        self.odd = 0

    async def receive(self, message: Any) -> int:
        if message == "get":
            return self.total
        if message % 2:
            self.odd += 1
            if self.odd == 4:
                return self.total
        self.total += message
        return self.total


class LossyMachine(ActorStateMachine):
    @initialize()
    async def start(self) -> None:
        self.counter = await self.system.spawn(LossyCounter, name="counter")
        self.model = 0

    @rule(n=st.integers(0, 100))
    def add(self, n: int) -> None:
        self.counter.tell(n)
        self.model += n

    @rule(seconds=st.floats(0, 5))
    async def wait(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @invariant()
    async def total_matches(self) -> None:
        assert await self.counter.ask("get") == self.model


def test_a_planted_bug_is_found_and_shrunk() -> None:
    config = settings(FAST, max_examples=300, stateful_step_count=12, database=None)
    with pytest.raises(AssertionError) as excinfo:
        run(LossyMachine, config)
    steps = [line for line in excinfo.value.__notes__ if line.startswith("state.")]
    adds = [line for line in steps if line.startswith("state.add(")]
    assert adds == ["state.add(n=1)"] * 4  # minimal: four odd adds, the smallest odd number
    assert "state.wait" not in "\n".join(steps)


# ---------------------------------------------------------------------- the rest of the API


class Helpers(ActorStateMachine):
    """run() outside steps, bundles, note(), data(), async teardown."""

    refs = Bundle("refs")
    torn_down: ClassVar[list[bool]] = []

    def __init__(self) -> None:
        super().__init__()
        self.first = self.run(self.system.spawn, Counter_)
        self.names = 0

    @rule(target=refs)
    async def spawn(self) -> ActorRef:
        self.names += 1
        return await self.system.spawn(Counter_, name=f"c{self.names}")

    @rule(ref=consumes(refs), data=st.data())
    async def use(self, ref: ActorRef, data: st.DataObject) -> None:
        n = data.draw(st.integers(1, 3), label="n")
        note(f"adding {n} to {ref.path}")
        assert await ref.ask(n) == n
        await ref.stop()

    @rule()
    def run_inside_a_step(self) -> None:
        with pytest.raises(RuntimeError, match="await directly"):
            self.run(trio.lowlevel.checkpoint)

    @invariant()
    def first_is_alive(self) -> None:
        assert self.first.statistics().state == "running"

    async def teardown(self) -> None:
        await self.first.stop()
        self.torn_down.append(self.first.statistics().state == "stopped")
        super().teardown()  # a no-op inside the step; the system closes after


def test_run_bundles_note_data_and_async_teardown() -> None:
    Helpers.torn_down.clear()
    run(Helpers)
    assert Helpers.torn_down
    assert all(Helpers.torn_down)


class Mixin:
    """Rules from a base that is not an ActorStateMachine are wrapped too."""

    hits: ClassVar[Counter[str]] = Counter()

    @rule()
    async def inherited(self) -> None:
        await trio.sleep(1)
        self.hits["mixin"] += 1


class Base(ActorStateMachine):
    @rule()
    async def base_rule(self) -> None:
        await trio.sleep(1)
        Mixin.hits["base"] += 1


class Derived(Mixin, Base):
    @rule()
    async def own(self) -> None:
        await trio.sleep(1)
        self.hits["own"] += 1


def test_inherited_rules_are_stepped_once() -> None:
    Mixin.hits.clear()
    run(Derived, settings(FAST, max_examples=20))
    assert set(Mixin.hits) == {"mixin", "base", "own"}
    assert getattr(Derived.inherited, "_triotok_step", False)
    assert not getattr(Derived.inherited.__wrapped__, "_triotok_step", False)


class AsTestCase(ActorStateMachine):
    @rule()
    async def tick(self) -> None:
        await self.system.advance(1.0)


AsTestCase.TestCase.settings = settings(FAST, max_examples=3)
TestAsTestCase = AsTestCase.TestCase
