"""Service modes: what a node may still serve, decided from health signals (sans-I/O).

Nothing here imports trio: every reading of the clock is passed in as ``now``.
The modes, from mildest to most severe::

    full       everything is served
    degraded   optional features are shed (plugins, webhooks, optional routes)
    read_only  writes are refused; reads answer, from caches when the store is down
    offline    only the control plane (health, metrics, operators) and critical reads

Invariants (checked by the hypothesis tests):

* :func:`admits` is monotone: a more severe mode never admits an operation a
  milder one refuses;
* no write is admitted in ``read_only`` or ``offline``;
* a critical read is admitted in every mode (it answers from a cache, or
  fails fast, but it is never refused by the mode);
* :meth:`ModePolicy.decide` picks the most severe mode any signal implies;
  an operator override that has not expired replaces it (both ways), and
  every decision names its reasons.

The HTTP layer's gate reads a :class:`ModeBoard`: when the node is ``full``
its ``restricted`` attribute is false and the gate costs one attribute check.
"""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

from .._exceptions import InvalidConfig
from .._util import percentage, seconds

__all__ = (
    "Criticality",
    "ModeBoard",
    "ModeChange",
    "ModeDecision",
    "ModeOverride",
    "ModePolicy",
    "ModeReason",
    "ModeSignals",
    "ModeStatistics",
    "ServiceMode",
    "admits",
)


class ServiceMode(enum.StrEnum):
    """How much a node serves; ordered by :attr:`severity`."""

    FULL = "full"
    DEGRADED = "degraded"
    READ_ONLY = "read_only"
    OFFLINE = "offline"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY: Final = {
    ServiceMode.FULL: 0,
    ServiceMode.DEGRADED: 1,
    ServiceMode.READ_ONLY: 2,
    ServiceMode.OFFLINE: 3,
}


class Criticality(enum.StrEnum):
    """How much an operation matters when the node cannot serve everything."""

    CRITICAL = "critical"
    NORMAL = "normal"
    OPTIONAL = "optional"


# (mode, criticality, writes) -> admitted. Written out rather than derived, so
# the table in docs/reference/degradation.md reads straight off it.
_ADMITS: Final[dict[tuple[ServiceMode, Criticality, bool], bool]] = {}
for _crit in Criticality:
    for _writes in (False, True):
        _ADMITS[ServiceMode.FULL, _crit, _writes] = True
        _ADMITS[ServiceMode.DEGRADED, _crit, _writes] = _crit is not Criticality.OPTIONAL
        _ADMITS[ServiceMode.READ_ONLY, _crit, _writes] = (
            not _writes and _crit is not Criticality.OPTIONAL
        )
        _ADMITS[ServiceMode.OFFLINE, _crit, _writes] = not _writes and _crit is Criticality.CRITICAL


def admits(mode: ServiceMode, criticality: Criticality, writes: bool) -> bool:
    """Whether ``mode`` lets an operation of ``criticality`` through (control routes aside).

    >>> admits(ServiceMode.READ_ONLY, Criticality.CRITICAL, writes=True)
    False
    """
    return _ADMITS[mode, criticality, writes]


# ------------------------------------------------------------------ signals and policy


@dataclass(frozen=True, slots=True)
class ModeSignals:
    """One sample of what the node knows about its dependencies.

    ``store_readable``/``store_writable``: the store's read and write circuit
    breakers are closed (and writes do not fail in a row); ``store_slow_rate``:
    percent of recent store calls slower than the breaker's slow-call
    duration (``-1``: too few calls to say); ``outbox_lag``: seconds the
    oldest undelivered event has waited; ``dead_letters_per_minute``: how
    fast dead letters grow; ``open_breakers``: dependencies whose breaker is
    not closed (payment providers, plugins); ``degraded_checks`` and
    ``down_checks``: module health checks reporting ``degraded`` / ``down``
    (the search index's lag arrives this way).
    """

    store_readable: bool = True
    store_writable: bool = True
    store_slow_rate: float = -1.0
    outbox_lag: float = 0.0
    dead_letters_per_minute: float = 0.0
    open_breakers: tuple[str, ...] = ()
    degraded_checks: tuple[str, ...] = ()
    down_checks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModeReason:
    """One signal's verdict: it alone would put the node in ``mode``."""

    signal: str
    mode: ServiceMode
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"signal": self.signal, "mode": self.mode.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ModeOverride:
    """An operator's choice of mode, until ``expires_at`` (clock time; ``None``: until lifted).

    ``actor`` is the audit log's "who"; ``expires_at_wall`` the expiry as a
    UTC ISO timestamp (what operators and other nodes see).
    """

    mode: ServiceMode
    reason: str
    actor: str = "operator"
    expires_at: float | None = None
    expires_at_wall: str | None = None

    def active(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def as_dict(self, now: float) -> dict[str, Any]:
        remaining = None if self.expires_at is None else max(0.0, self.expires_at - now)
        return {
            "mode": self.mode.value,
            "reason": self.reason,
            "actor": self.actor,
            "expires_at": self.expires_at_wall,
            "expires_in": None if remaining is None else round(remaining, 3),
        }


@dataclass(frozen=True, slots=True)
class ModeDecision:
    """The mode a node is in, the mode its signals alone imply, and why.

    ``retry_after``: the seconds a refused client is told to wait.
    """

    mode: ServiceMode
    computed: ServiceMode
    reasons: tuple[ModeReason, ...] = ()
    override: ModeOverride | None = None
    retry_after: float = 5.0

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "computed": self.computed.value,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "override": None if self.override is None else self.override.as_dict(now),
            "retry_after": self.retry_after,
        }


FULL_DECISION: Final = ModeDecision(ServiceMode.FULL, ServiceMode.FULL)


@dataclass(frozen=True, slots=True)
class ModePolicy:
    """Thresholds that turn signals into a mode (every field validated, ``InvalidConfig``).

    ``store_down``: the mode while the store cannot be read (``read_only``,
    serving from caches, or ``offline``); a store that reads but does not take
    writes always means ``read_only``. ``slow_rate_degraded``: percent of slow
    store calls that degrades the node; ``outbox_lag_degraded`` seconds of
    outbox lag and ``dead_letters_per_minute`` dead letters a minute do too.
    ``retry_after``: seconds a refused client waits when nothing says better.

    ::

        policy = ModePolicy(store_down=ServiceMode.OFFLINE)
        decision = policy.decide(ModeSignals(store_readable=False), None, now=0.0)
        assert decision.mode is ServiceMode.OFFLINE
    """

    store_down: ServiceMode = ServiceMode.READ_ONLY
    slow_rate_degraded: float = 50.0
    outbox_lag_degraded: float = 60.0
    dead_letters_per_minute: float = 60.0
    retry_after: float = 5.0

    def __post_init__(self) -> None:
        mode = self.store_down
        if not isinstance(mode, ServiceMode) or mode not in (
            ServiceMode.READ_ONLY,
            ServiceMode.OFFLINE,
        ):
            raise InvalidConfig("store_down", f"must be read_only or offline, got {mode!r}")
        percentage("slow_rate_degraded", self.slow_rate_degraded)
        seconds("outbox_lag_degraded", self.outbox_lag_degraded, allow_zero=False)
        seconds("dead_letters_per_minute", self.dead_letters_per_minute, allow_zero=False)
        seconds("retry_after", self.retry_after, allow_zero=False)

    def reasons(self, signals: ModeSignals) -> tuple[ModeReason, ...]:
        """Every signal that departs from ``full``, with the mode it implies."""
        found: list[ModeReason] = []
        if not signals.store_readable:
            found.append(ModeReason("store", self.store_down, "the store cannot be read"))
        if not signals.store_writable:
            found.append(
                ModeReason("store.writes", ServiceMode.READ_ONLY, "the store does not take writes")
            )
        if signals.store_slow_rate >= self.slow_rate_degraded:
            detail = f"{signals.store_slow_rate:.0f}% of store calls are slow"
            found.append(ModeReason("store.latency", ServiceMode.DEGRADED, detail))
        if signals.outbox_lag >= self.outbox_lag_degraded:
            detail = f"the oldest undelivered event waits {signals.outbox_lag:.1f} s"
            found.append(ModeReason("outbox.lag", ServiceMode.DEGRADED, detail))
        if signals.dead_letters_per_minute >= self.dead_letters_per_minute:
            detail = f"{signals.dead_letters_per_minute:.0f} dead letters a minute"
            found.append(ModeReason("dead_letters", ServiceMode.DEGRADED, detail))
        for name in signals.open_breakers:
            found.append(ModeReason(f"breaker:{name}", ServiceMode.DEGRADED, "breaker not closed"))
        for name in signals.degraded_checks:
            found.append(ModeReason(f"check:{name}", ServiceMode.DEGRADED, "reports degraded"))
        for name in signals.down_checks:
            found.append(ModeReason(f"check:{name}", ServiceMode.DEGRADED, "reports down"))
        return tuple(found)

    def decide(
        self,
        signals: ModeSignals,
        override: ModeOverride | None,
        now: float,
        *,
        retry_after: float | None = None,
    ) -> ModeDecision:
        """The node's mode for ``signals`` and the operator's ``override`` at clock ``now``.

        ``retry_after`` (seconds until a dependency is tried again, e.g. the
        store breaker's wait) refines what refused clients are told.
        """
        reasons = self.reasons(signals)
        computed = max(
            (reason.mode for reason in reasons),
            key=lambda m: m.severity,
            default=ServiceMode.FULL,
        )
        wait = self.retry_after if retry_after is None else retry_after
        if override is not None and override.active(now):
            if override.expires_at is not None and override.mode is not ServiceMode.FULL:
                wait = min(max(override.expires_at - now, 1.0), 3600.0)
            operator = ModeReason("override", override.mode, override.reason)
            return ModeDecision(override.mode, computed, (operator, *reasons), override, wait)
        return ModeDecision(computed, computed, reasons, None, wait)


# ------------------------------------------------------------------ the node's board


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One change of a node's mode: from, to, why, when (clock and UTC ISO)."""

    from_mode: ServiceMode
    to_mode: ServiceMode
    reasons: tuple[ModeReason, ...]
    at: float
    at_wall: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_mode.value,
            "to": self.to_mode.value,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "at": self.at_wall,
        }


@dataclass(frozen=True, slots=True)
class ModeStatistics:
    """A snapshot of a :class:`ModeBoard`, for metrics and the tree.

    ``mode_code`` is the mode's severity (0 full .. 3 offline), a gauge;
    ``changes`` counts mode changes; ``refused`` the requests the gate
    refused, by code; ``seconds_in_mode`` the time since the last change.
    """

    mode: str
    mode_code: int
    computed: str
    reasons: tuple[str, ...]
    override: bool
    changes: int
    refused: dict[str, int] = field(default_factory=dict)
    seconds_in_mode: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mode_code": self.mode_code,
            "computed": self.computed,
            "reasons": list(self.reasons),
            "override": self.override,
            "changes": self.changes,
            "refused": dict(self.refused),
            "seconds_in_mode": self.seconds_in_mode,
        }


class ModeBoard:
    """The node's current :class:`ModeDecision`, as every request and module reads it.

    The mode monitor (``/app/mode``) calls :meth:`apply`; the HTTP gate reads
    :attr:`restricted` (false in ``full``: the gate's whole cost) and then
    :meth:`refusal`. Listeners get every :class:`ModeChange` synchronously.

    ::

        board = ModeBoard()
        board.apply(policy.decide(signals, None, now), now=now, wall="2026-01-01T00:00:00Z")
        if board.restricted and (code := board.refusal(Criticality.NORMAL, writes=True)):
            ...  # answer 503 ``code`` with Retry-After board.retry_after
    """

    __slots__ = (
        "_changes",
        "_now",
        "_refused",
        "_since",
        "decision",
        "history",
        "listeners",
        "mode",
        "restricted",
        "store_down",
    )

    def __init__(self, *, history: int = 50) -> None:
        self.decision = FULL_DECISION
        self.mode = ServiceMode.FULL
        #: ``mode is not FULL``: the one attribute the gate reads per request.
        self.restricted = False
        #: The store cannot be read: reads that have a stale copy answer it at once.
        self.store_down = False
        self.history: deque[ModeChange] = deque(maxlen=history)
        self.listeners: list[Any] = []
        self._changes = 0
        self._refused: Counter[str] = Counter()
        self._since: float | None = None
        self._now = 0.0

    @property
    def retry_after(self) -> int:
        """Whole seconds for ``Retry-After`` (at least 1)."""
        wait = self.decision.retry_after
        return max(1, math.ceil(wait)) if math.isfinite(wait) else 1

    def apply(self, decision: ModeDecision, *, now: float, wall: str) -> ModeChange | None:
        """Make ``decision`` current; the change, if the mode changed (else ``None``)."""
        previous = self.mode
        self._now = now
        if self._since is None:
            self._since = now
        self.decision = decision
        self.store_down = any(r.signal == "store" for r in decision.reasons)
        if decision.mode is previous:
            return None
        self.mode = decision.mode
        self.restricted = decision.mode is not ServiceMode.FULL
        self._changes += 1
        self._since = now
        change = ModeChange(previous, decision.mode, decision.reasons, now, wall)
        self.history.append(change)
        for listener in list(self.listeners):
            listener(change)
        return change

    def refusal(self, criticality: Criticality, writes: bool) -> str | None:
        """The stable code to refuse an operation with (the mode's name), or ``None``: admitted."""
        mode = self.mode
        if _ADMITS[mode, criticality, writes]:
            return None
        code = mode.value
        self._refused[code] += 1
        return code

    def statistics(self) -> ModeStatistics:
        """As of the last :meth:`apply` (the monitor applies a decision every tick)."""
        decision = self.decision
        return ModeStatistics(
            mode=self.mode.value,
            mode_code=self.mode.severity,
            computed=decision.computed.value,
            reasons=tuple(reason.signal for reason in decision.reasons),
            override=decision.override is not None,
            changes=self._changes,
            refused=dict(self._refused),
            seconds_in_mode=round(max(0.0, self._now - (self._since or self._now)), 3),
        )
