"""The sans-I/O passivation policy: examples and a hypothesis state machine against a model."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from triotok.supervision import InvalidConfig, PassivationPolicy


def test_order_deadlines_and_excess() -> None:
    p: PassivationPolicy[str] = PassivationPolicy(idle=10.0, max_active=2)
    assert (p.oldest(), p.next_deadline(), p.idle_key(100.0), p.excess()) == (
        None,
        math.inf,
        None,
        0,
    )
    p.activated("a", 0.0)
    p.activated("b", 1.0)
    p.activated("c", 2.0)
    assert (p.excess(), p.oldest(), p.keys()) == (1, "a", ["a", "b", "c"])
    p.touched("a", 3.0)
    assert (p.oldest(), p.next_deadline()) == ("b", 11.0)
    assert p.idle_key(10.9) is None
    assert p.idle_key(11.0) == "b"
    p.removed("b")
    p.removed("b")  # twice is fine
    p.touched("zz", 4.0)  # unknown keys are not added by a touch
    assert (len(p), "zz" in p, p.excess(), p.oldest()) == (2, False, 0, "c")


@pytest.mark.parametrize(
    ("idle", "max_active"),
    [(0, 1), (-1, 1), (math.nan, 1), (math.inf, 1), ("1", 1), (1, 0), (1, 2.0), (1, True)],
)
def test_invalid_settings(idle: object, max_active: object) -> None:
    with pytest.raises(InvalidConfig):
        PassivationPolicy(idle=idle, max_active=max_active)  # type: ignore[arg-type]  # the point


class PolicyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy: PassivationPolicy[int] = PassivationPolicy(idle=5.0, max_active=3)
        self.model: dict[int, float] = {}  # key -> last touch
        self.now = 0.0

    @rule(dt=st.floats(0, 10))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(key=st.integers(0, 6))
    def activate(self, key: int) -> None:
        self.policy.activated(key, self.now)
        self.model.pop(key, None)
        self.model[key] = self.now

    @rule(key=st.integers(0, 6))
    def touch(self, key: int) -> None:
        self.policy.touched(key, self.now)
        if key in self.model:
            del self.model[key]
            self.model[key] = self.now

    @rule(key=st.integers(0, 6))
    def remove(self, key: int) -> None:
        self.policy.removed(key)
        self.model.pop(key, None)

    @invariant()
    def agrees_with_the_model(self) -> None:
        p, model = self.policy, self.model
        assert p.keys() == list(model)
        assert p.excess() == max(0, len(model) - 3)
        oldest = min(model, key=model.__getitem__, default=None)
        assert p.oldest() == (next(iter(model)) if model else None)
        if oldest is not None:
            assert model[p.oldest()] == model[oldest]  # LRU order is sorted by time
        deadline = min(model.values(), default=math.inf) + 5.0
        assert p.next_deadline() == deadline
        expected = p.oldest() if deadline <= self.now else None
        assert p.idle_key(self.now) == expected


PolicyMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestPolicy = PolicyMachine.TestCase
