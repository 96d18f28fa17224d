"""The service-mode policy (sans-I/O): the admission table, examples, a state machine.

The state machine feeds random signals, operator overrides (with expiry) and
clock advances to a :class:`ModePolicy` and a :class:`ModeBoard`, and checks
after every step, against its own model: the mode is the most severe any
signal implies unless an unexpired override says otherwise; writes are never
admitted in ``read_only``/``offline``; a critical read is always admitted
(while the store is down it is answered from the stale copies, which the
board says by ``store_down``).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from triotok.actors import InvalidConfig
from triotok.resilience import (
    Criticality,
    ModeBoard,
    ModeOverride,
    ModePolicy,
    ModeSignals,
    ServiceMode,
    admits,
)

FULL, DEGRADED, READ_ONLY, OFFLINE = (
    ServiceMode.FULL,
    ServiceMode.DEGRADED,
    ServiceMode.READ_ONLY,
    ServiceMode.OFFLINE,
)
CRITICAL, NORMAL, OPTIONAL = Criticality.CRITICAL, Criticality.NORMAL, Criticality.OPTIONAL
WALL = "2026-01-01T00:00:00Z"


# ----------------------------------------------------------------------------- the table


def test_the_admission_table() -> None:
    table = {
        (mode.value, crit.value, writes): admits(mode, crit, writes)
        for mode in ServiceMode
        for crit in Criticality
        for writes in (False, True)
    }
    refused = sorted(k for k, v in table.items() if not v)
    assert refused == sorted(
        [
            ("degraded", "optional", False),
            ("degraded", "optional", True),
            ("read_only", "optional", False),
            ("read_only", "optional", True),
            ("read_only", "normal", True),
            ("read_only", "critical", True),
            ("offline", "optional", False),
            ("offline", "optional", True),
            ("offline", "normal", False),
            ("offline", "normal", True),
            ("offline", "critical", True),
        ]
    )


def test_admission_is_monotone_in_the_mode() -> None:
    modes = sorted(ServiceMode, key=lambda m: m.severity)
    for crit, writes in itertools.product(Criticality, (False, True)):
        admitted = [admits(mode, crit, writes) for mode in modes]
        # Once refused, refused in every more severe mode.
        assert admitted == sorted(admitted, reverse=True), (crit, writes)


# ----------------------------------------------------------------------------- examples


def test_signals_pick_the_most_severe_mode_and_say_why() -> None:
    policy = ModePolicy()
    decision = policy.decide(
        ModeSignals(store_writable=False, outbox_lag=120.0, open_breakers=("payments",)), None, 0.0
    )
    assert decision.mode is READ_ONLY
    assert [r.signal for r in decision.reasons] == [
        "store.writes",
        "outbox.lag",
        "breaker:payments",
    ]
    assert policy.decide(ModeSignals(), None, 0.0).mode is FULL
    assert policy.decide(ModeSignals(store_slow_rate=75.0), None, 0.0).mode is DEGRADED
    assert policy.decide(ModeSignals(store_slow_rate=-1.0), None, 0.0).mode is FULL


def test_a_store_that_cannot_be_read_is_read_only_or_offline_per_policy() -> None:
    down = ModeSignals(store_readable=False, store_writable=False)
    assert ModePolicy().decide(down, None, 0.0).mode is READ_ONLY
    assert ModePolicy(store_down=OFFLINE).decide(down, None, 0.0).mode is OFFLINE


def test_an_override_replaces_the_computed_mode_until_it_expires() -> None:
    policy = ModePolicy()
    override = ModeOverride(OFFLINE, "maintenance", "key:k", expires_at=100.0)
    during = policy.decide(ModeSignals(store_writable=False), override, 40.0)
    assert (during.mode, during.computed) == (OFFLINE, READ_ONLY)
    assert during.reasons[0].signal == "override"
    assert during.retry_after == pytest.approx(60.0)  # until the override expires
    after = policy.decide(ModeSignals(store_writable=False), override, 100.0)
    assert (after.mode, after.override) == (READ_ONLY, None)
    # An override to full lifts what the signals say (the breakers still fail fast).
    lift = policy.decide(ModeSignals(outbox_lag=999.0), ModeOverride(FULL, "known lag"), 0.0)
    assert lift.mode is FULL


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("store_down", ServiceMode.DEGRADED),
        ("store_down", "offline"),
        ("slow_rate_degraded", 101.0),
        ("outbox_lag_degraded", 0.0),
        ("dead_letters_per_minute", float("nan")),
        ("retry_after", -1.0),
    ],
)
def test_policy_fields_are_validated(field: str, value: object) -> None:
    with pytest.raises(InvalidConfig, match=field):
        ModePolicy(**{field: value})  # type: ignore[arg-type]


def test_the_board_counts_changes_and_refusals_and_tells_listeners() -> None:
    board = ModeBoard()
    seen = []
    board.listeners.append(seen.append)
    policy = ModePolicy()
    assert board.apply(policy.decide(ModeSignals(), None, 0.0), now=0.0, wall=WALL) is None
    assert not board.restricted
    change = board.apply(
        policy.decide(ModeSignals(store_readable=False), None, 1.0), now=1.0, wall=WALL
    )
    assert change is not None
    assert (change.from_mode, change.to_mode) == (FULL, READ_ONLY)
    assert seen == [change]
    assert board.restricted
    assert board.store_down
    assert board.refusal(NORMAL, writes=True) == "read_only"
    assert board.refusal(CRITICAL, writes=False) is None
    board.apply(policy.decide(ModeSignals(), None, 4.5), now=4.5, wall=WALL)
    stats = board.statistics()
    assert stats.mode == "full"
    assert stats.changes == 2
    assert stats.refused == {"read_only": 1}
    assert stats.seconds_in_mode == 0.0
    assert [c.to_mode for c in board.history] == [READ_ONLY, FULL]


# ----------------------------------------------------------------------------- the machine

signal_sets = st.builds(
    ModeSignals,
    store_readable=st.booleans(),
    store_writable=st.booleans(),
    store_slow_rate=st.sampled_from([-1.0, 0.0, 49.9, 50.0, 100.0]),
    outbox_lag=st.sampled_from([0.0, 59.9, 60.0, 3600.0]),
    dead_letters_per_minute=st.sampled_from([0.0, 59.0, 60.0, 1000.0]),
    open_breakers=st.lists(st.sampled_from(["payments", "plugin:x"]), max_size=2).map(tuple),
    degraded_checks=st.lists(st.sampled_from(["search"]), max_size=1).map(tuple),
    down_checks=st.lists(st.sampled_from(["tenants"]), max_size=1).map(tuple),
)


def model_mode(policy: ModePolicy, signals: ModeSignals) -> ServiceMode:
    """An independent reading of the policy's documented rules."""
    if not signals.store_readable:
        return policy.store_down
    if not signals.store_writable:
        return READ_ONLY
    degraded = (
        signals.store_slow_rate >= policy.slow_rate_degraded
        or signals.outbox_lag >= policy.outbox_lag_degraded
        or signals.dead_letters_per_minute >= policy.dead_letters_per_minute
        or signals.open_breakers
        or signals.degraded_checks
        or signals.down_checks
    )
    return DEGRADED if degraded else FULL


class ModeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy = ModePolicy()
        self.board = ModeBoard()
        self.now = 0.0
        self.signals = ModeSignals()
        self.override: ModeOverride | None = None
        self.changes = 0

    def _decide(self) -> None:
        decision = self.policy.decide(self.signals, self.override, self.now)
        before = self.board.mode
        change = self.board.apply(decision, now=self.now, wall=WALL)
        if before is not self.board.mode:
            self.changes += 1
            assert change is not None
        else:
            assert change is None

    @rule(policy=st.sampled_from([READ_ONLY, OFFLINE]))
    def policy_for_store_down(self, policy: ServiceMode) -> None:
        self.policy = ModePolicy(store_down=policy)
        self._decide()

    @rule(signals=signal_sets)
    def sample(self, signals: ModeSignals) -> None:
        self.signals = signals
        self._decide()

    @rule(
        mode=st.sampled_from(list(ServiceMode)),
        expires_in=st.one_of(st.none(), st.floats(0.5, 100.0)),
    )
    def set_override(self, mode: ServiceMode, expires_in: float | None) -> None:
        expires = None if expires_in is None else self.now + expires_in
        self.override = ModeOverride(mode, "operator", expires_at=expires)
        self._decide()

    @rule()
    def clear_override(self) -> None:
        self.override = None
        self._decide()

    @rule(seconds=st.floats(0.0, 60.0))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._decide()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_mode_follows_the_rules(self) -> None:
        override = self.override
        if override is not None and override.active(self.now):
            expected = override.mode
        else:
            expected = model_mode(self.policy, self.signals)
        assert self.board.mode is expected
        assert self.board.restricted is (expected is not FULL)
        assert self.board.decision.computed is model_mode(self.policy, self.signals)

    @invariant()
    def writes_are_never_admitted_read_only_or_offline(self) -> None:
        if self.board.mode in (READ_ONLY, OFFLINE):
            for crit in Criticality:
                assert self.board.refusal(crit, writes=True) == self.board.mode.value

    @invariant()
    def critical_reads_are_always_admitted(self) -> None:
        assert self.board.refusal(CRITICAL, writes=False) is None
        # ... and while the store cannot be read (no override), they answer from the
        # stale copies: the board says so.
        if not self.signals.store_readable and self.board.decision.override is None:
            assert self.board.store_down

    @invariant()
    def optional_work_is_shed_unless_full(self) -> None:
        shed = self.board.refusal(OPTIONAL, writes=False) is not None
        assert shed is (self.board.mode is not FULL)

    @invariant()
    def every_restriction_has_a_reason_and_a_retry_after(self) -> None:
        if self.board.restricted:
            assert self.board.decision.reasons
            assert self.board.retry_after >= 1

    @invariant()
    def changes_are_counted_and_kept(self) -> None:
        assert self.board.statistics().changes == self.changes
        if self.board.history:
            assert self.board.history[-1].to_mode is self.board.mode


ModeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_mode_machine = ModeMachine.TestCase
