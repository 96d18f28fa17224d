"""Hypothesis state machine for SingleFlight, driving one live trio loop step by step.

Hypothesis rules are synchronous, but SingleFlight's state (executions in
flight, waiting callers) only exists inside a running trio loop. The test kit's
``LoopThread`` keeps one ``trio.run`` (with a ``MockClock``) alive in a helper
thread for the whole example; each rule runs a small step inside it and then
settles, so invariants are checked on a quiescent system.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from triotok._exceptions import ActorStopped
from triotok.resilience import SingleFlight
from triotok.testing._loop import LoopThread


@dataclass
class Execution:
    eid: int
    key: str
    release: trio.Event = field(default_factory=trio.Event)
    status: str = "running"  # running | value | error | cancelled
    error: Exception | None = None
    forgotten: bool = False


@dataclass
class Caller:
    key: str
    eid: int
    scope: trio.CancelScope | None = None
    status: str = "pending"  # pending | value | error | cancelled | stopped
    result: Any = None
    shared: bool | None = None


KEYS = st.sampled_from(["a", "b"])


class SingleFlightMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.driver = LoopThread(name="driver")
        self.ids = itertools.count()
        self.execs: dict[int, Execution] = {}
        self.callers: list[Caller] = []
        self.mapped: dict[str, int] = {}  # model: key -> execution a new caller joins
        self.generation_calls = 0
        self.generation_execs = 0
        self._open_owner()

    # ------------------------------------------------------------------ plumbing

    def _open_owner(self) -> None:
        async def start() -> None:
            self.owner_scope, self.sf = await self.driver.system.start(self._owner)

        self.driver.call(start)
        self.generation_calls = self.generation_execs = 0

    async def _owner(
        self, task_status: trio.TaskStatus[tuple[trio.CancelScope, SingleFlight]]
    ) -> None:
        async with trio.open_nursery() as owner:
            task_status.started((owner.cancel_scope, SingleFlight(owner, name="owner")))
            await trio.sleep_forever()

    async def _work(self, key: str) -> tuple[str, int]:
        ex = Execution(next(self.ids), key)
        self.execs[ex.eid] = ex
        try:
            await ex.release.wait()
        except trio.Cancelled:
            ex.status = "cancelled"
            raise
        if ex.error is not None:
            ex.status = "error"
            raise ex.error
        ex.status = "value"
        return (key, ex.eid)

    async def _call(self, caller: Caller) -> None:
        with trio.CancelScope() as scope:
            caller.scope = scope
            try:
                caller.result, caller.shared = await self.sf.do_ex(
                    caller.key, self._work, caller.key
                )
                caller.status = "value"
            except ActorStopped:
                caller.status = "stopped"
            except Exception as exc:
                caller.status = "error"
                caller.result = exc
        if scope.cancelled_caught:
            caller.status = "cancelled"

    def _running(self) -> list[Execution]:
        return [e for e in self.execs.values() if e.status == "running"]

    def _pending(self) -> list[Caller]:
        return [c for c in self.callers if c.status == "pending"]

    # ------------------------------------------------------------------ rules

    @rule(key=KEYS)
    def call(self, key: str) -> None:
        before = set(self.execs)
        joined = self.mapped.get(key)
        caller = Caller(key, -1)
        self.callers.append(caller)
        self.generation_calls += 1
        self.driver.call(lambda: self.driver.system.start_soon(self._call, caller))
        new = set(self.execs) - before
        if joined is None:
            assert len(new) == 1, "a caller with nothing in flight starts one execution"
            (caller.eid,) = new
            self.mapped[key] = caller.eid
            self.generation_execs += 1
        else:
            assert not new, "a caller joins the execution in flight"
            caller.eid = joined

    @precondition(lambda self: bool(self._running()))
    @rule(data=st.data(), fail=st.booleans())
    def finish(self, data: st.DataObject, fail: bool) -> None:
        ex = data.draw(st.sampled_from(sorted(self._running(), key=lambda e: e.eid)))
        if fail:
            ex.error = RuntimeError(f"exec {ex.eid}")
        self.driver.call(ex.release.set)
        assert ex.status == ("error" if fail else "value")
        if self.mapped.get(ex.key) == ex.eid:
            del self.mapped[ex.key]

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data())
    def cancel_caller(self, data: st.DataObject) -> None:
        caller = data.draw(st.sampled_from(self._pending()))
        assert caller.scope is not None
        self.driver.call(caller.scope.cancel)
        assert caller.status == "cancelled"
        ex = self.execs[caller.eid]
        if not any(c.eid == ex.eid for c in self._pending()):
            assert ex.status == "cancelled", "the last waiter leaving cancels the execution"
            if self.mapped.get(ex.key) == ex.eid:
                del self.mapped[ex.key]
        else:
            assert ex.status == "running", "a cancelled caller never cancels the others"

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.driver.call(lambda: self.sf.forget(key))
        eid = self.mapped.pop(key, None)
        if eid is not None:
            self.execs[eid].forgotten = True

    @rule()
    def restart_owner(self) -> None:
        pending = self._pending()
        self.driver.call(self.owner_scope.cancel)
        assert all(c.status == "stopped" for c in pending), "waiters get an error, never hang"
        assert not self._running()
        assert self.sf.statistics().in_flight == 0
        self.mapped.clear()
        self._open_owner()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def at_most_one_joinable_execution_per_key(self) -> None:
        for key in ("a", "b"):
            joinable = [e for e in self._running() if e.key == key and not e.forgotten]
            assert len(joinable) <= 1
            assert self.sf.in_flight(key) == (key in self.mapped)
        assert self.sf.statistics().in_flight == len(self.mapped)

    @invariant()
    def every_running_execution_has_a_waiter(self) -> None:
        waited = {c.eid for c in self._pending()}
        assert {e.eid for e in self._running()} <= waited

    @invariant()
    def every_caller_gets_result_error_or_own_cancellation(self) -> None:
        for c in self.callers:
            ex = self.execs[c.eid]
            if c.status == "pending":
                assert ex.status == "running", "no caller waits on a finished execution"
            elif c.status == "value":
                assert ex.status == "value"
                assert c.result == (c.key, c.eid)
            elif c.status == "error":
                assert ex.status == "error"
                assert c.result is ex.error
            else:
                assert c.status in ("cancelled", "stopped")

    @invariant()
    def statistics_count_calls_and_executions(self) -> None:
        stats = self.sf.statistics()
        assert stats.calls == self.generation_calls
        assert stats.executions == self.generation_execs
        assert stats.shared == stats.calls - stats.executions

    def teardown(self) -> None:
        self.driver.close()


SingleFlightMachine.TestCase.settings = settings(
    max_examples=75, stateful_step_count=30, deadline=None
)
TestSingleFlightMachine = SingleFlightMachine.TestCase
