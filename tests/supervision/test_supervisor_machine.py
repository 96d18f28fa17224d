"""A hypothesis state machine over a live supervisor (issue 10).

``/test/outer`` (never gives up) supervises ``/test/outer/inner``, whose
strategy, intensity, period and spec children (each PERMANENT, TRANSIENT or
TEMPORARY) are drawn.  Rules crash children, stop them normally, add dynamic
children (some that cannot start), terminate children, restart ``inner`` as
an operator and let time pass; crashes under ONE_FOR_ALL and REST_FOR_ONE
make group restarts, and exceeding the intensity makes ``inner`` fail and be
restarted by ``outer`` (an escalation).

The machine keeps its own model (the children in order with their restart
type and whether they run, and the window of counted restarts) and checks
after every step:

- ``which_children()`` is the model, in order, with the right states;
- a TEMPORARY child never starts twice (per supervisor incarnation: a new
  incarnation starts its spec again);
- after a restart of ``inner`` its children are exactly its spec's, all
  running, and ``inner`` was restarted exactly when the model says;
- the restarts counted in the period never exceed the intensity, and match
  the model's window.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from triotok import Actor
from triotok.actors import ActorCrashed
from triotok.supervision import (
    ChildSpec,
    ChildStartFailed,
    Restart,
    Strategy,
    SupervisorRef,
    SupervisorSpec,
)
from triotok.testing import ActorStateMachine

INNER = "/test/outer/inner"


class Journal:
    """Starts per (incarnation of ``inner``, child path), across everything."""

    def __init__(self) -> None:
        self.starts: Counter[tuple[int, str]] = Counter()


class Worker(Actor):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def on_start(self) -> None:
        # "inner"'s restart count is bumped before its children start again.
        generation = self.ctx.system.ref(INNER).statistics().restarts
        self.journal.starts[generation, self.ctx.path] += 1

    async def receive(self, message: str) -> str:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "exit":
            self.ctx.stop()
        return message


class NoStart(Actor):
    async def on_start(self) -> None:
        raise OSError("cannot start")

    async def receive(self, message: str) -> str:  # pragma: no cover  # never runs
        return message


def bad_factory() -> Actor:
    raise ValueError("bad factory")


@dataclass
class Row:
    """The model of one child."""

    id: str
    restart: Restart
    running: bool = True


class SupervisorMachine(ActorStateMachine):
    system_options: ClassVar[dict[str, Any]] = {"intensity": 1000, "period": 1.0}

    @initialize(
        strategy=st.sampled_from(Strategy),
        restarts=st.lists(st.sampled_from(Restart), min_size=1, max_size=4),
        intensity=st.integers(0, 3),
        period=st.sampled_from([1.0, 5.0]),
    )
    async def start(
        self, strategy: Strategy, restarts: list[Restart], intensity: int, period: float
    ) -> None:
        self.journal = Journal()
        self.strategy, self.intensity, self.period = strategy, intensity, period
        self.spec_rows = [(f"s{i}", restart) for i, restart in enumerate(restarts)]
        inner = SupervisorSpec(
            "inner",
            [ChildSpec(i, Worker, (self.journal,), restart=r) for i, r in self.spec_rows],
            strategy=strategy,
            intensity=intensity,
            period=period,
        )
        await self.system.spawn_supervisor(SupervisorSpec("outer", [inner], intensity=10**6))
        inner_ref = self.system.ref(INNER)
        assert isinstance(inner_ref, SupervisorRef)
        self.inner = inner_ref
        self.names = itertools.count(1)
        self.temporary = {f"{INNER}/{i}" for i, r in self.spec_rows if r is Restart.TEMPORARY}
        self.generation = 0  # restarts of "inner" the model expects
        self.seen_generation = 0  # the last one the invariants checked
        self._from_spec()

    # ------------------------------------------------------------------ model

    def _from_spec(self) -> None:
        self.rows = [Row(i, r) for i, r in self.spec_rows]
        self.window: list[float] = []  # a new incarnation counts afresh

    def _find(self, child_id: str) -> Row:
        [row] = [r for r in self.rows if r.id == child_id]
        return row

    def _counted(self, now: float) -> bool:
        """OTP intensity: record a restart; False once more than ``intensity`` in the period."""
        self.window = [t for t in self.window if t > now - self.period] + [now]
        return len(self.window) <= self.intensity

    def _exited(self, row: Row, *, crashed: bool) -> None:
        if row.restart is Restart.TEMPORARY:
            self.rows.remove(row)  # never restarted, never counted
            return
        if row.restart is Restart.TRANSIENT and not crashed:
            row.running = False  # stays listed, stopped
            return
        if not self._counted(trio.current_time()):
            self.generation += 1  # "inner" fails; "outer" restarts it from its spec
            self._from_spec()
            return
        index = self.rows.index(row)
        group = {
            Strategy.ONE_FOR_ONE: [row],
            Strategy.ONE_FOR_ALL: list(self.rows),
            Strategy.REST_FOR_ONE: self.rows[index:],
        }[self.strategy]
        for member in group:
            if member.restart is Restart.TEMPORARY:
                self.rows.remove(member)  # stopped by the group and removed
            else:
                member.running = True

    def _running(self) -> list[str]:
        return [r.id for r in self.rows if r.running]

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: self._running())
    @rule(data=st.data())
    async def crash(self, data: st.DataObject) -> None:
        child_id = data.draw(st.sampled_from(self._running()), label="child")
        with pytest.raises(ActorCrashed):
            await self.system.ref(f"{INNER}/{child_id}").ask("boom")
        self._exited(self._find(child_id), crashed=True)

    @precondition(lambda self: self._running())
    @rule(data=st.data())
    async def stop_normally(self, data: st.DataObject) -> None:
        child_id = data.draw(st.sampled_from(self._running()), label="child")
        assert await self.system.ref(f"{INNER}/{child_id}").ask("exit") == "exit"
        self._exited(self._find(child_id), crashed=False)

    @rule(restart=st.sampled_from(Restart))
    async def start_dynamic(self, restart: Restart) -> None:
        child_id = f"d{next(self.names)}"  # never reused: one child, one identity
        spec = ChildSpec(child_id, Worker, (self.journal,), restart=restart)
        ref = await self.inner.start_child(spec)
        assert ref.path == f"{INNER}/{child_id}"
        self.rows.append(Row(child_id, restart))
        if restart is Restart.TEMPORARY:
            self.temporary.add(ref.path)

    @rule(factory=st.sampled_from([NoStart, bad_factory]))
    async def start_one_that_cannot_start(self, factory: Any) -> None:
        child_id = f"f{next(self.names)}"
        with pytest.raises(ChildStartFailed) as info:
            await self.inner.start_child(ChildSpec(child_id, factory))
        assert info.value.path == f"{INNER}/{child_id}"
        # Nothing kept and nothing counted: the model does not change.

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    async def terminate(self, data: st.DataObject) -> None:
        row = data.draw(st.sampled_from(self.rows), label="child")
        await self.inner.terminate_child(row.id)
        self.rows.remove(row)

    @rule()
    async def operator_restart(self) -> None:
        await self.system.restart(INNER)  # the operators' action (TestSystem offers it too)
        self.generation += 1
        self._from_spec()

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0]))
    async def let_time_pass(self, seconds: float) -> None:
        await self.system.advance(seconds)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def children_match_the_model(self) -> None:
        rows = [(c.id, c.kind, c.state) for c in self.inner.which_children()]
        expected = [(r.id, "actor", "running" if r.running else "stopped") for r in self.rows]
        assert rows == expected
        assert self.inner.statistics().state == "running"

    @invariant()
    def a_temporary_child_never_starts_twice(self) -> None:
        for (generation, path), starts in self.journal.starts.items():
            if path in self.temporary:
                assert starts == 1, (generation, path, starts)

    @invariant()
    def a_restarted_supervisor_holds_exactly_its_spec(self) -> None:
        generation = self.inner.statistics().restarts
        assert generation == self.generation  # restarted exactly when the model says
        if generation != self.seen_generation:
            self.seen_generation = generation
            children = self.inner.which_children()
            assert [c.id for c in children] == [i for i, _ in self.spec_rows]
            assert {c.state for c in children} == {"running"}
            for child in children:
                assert self.journal.starts[generation, child.ref.path] == 1

    @invariant()
    def restarts_never_exceed_the_intensity(self) -> None:
        now = trio.current_time()
        counted = self.inner.statistics().restarts_in_period
        assert counted <= self.intensity
        assert counted == sum(1 for t in self.window if t > now - self.period)


SupervisorMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSupervisorMachine = SupervisorMachine.TestCase
