"""Every duration, rate, count and threshold refuses nan, inf and -inf (issue 10 point 4).

One row per public constructor (or call) and field; each must raise
``InvalidConfig`` whose ``field`` names the offending parameter. No field
documents ``inf`` as "no limit" (``None`` says that where a field allows it,
e.g. ``ChildSpec.shutdown``), so every row refuses all three values. The
shared validators of ``triotok._util`` are pinned below the table.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from triotok import open_system
from triotok._util import fraction, percentage, positive_int, rate, seconds
from triotok.actors import Actor, DeadLetterOffice, LoadingCache, Mailbox
from triotok.config import load_settings
from triotok.store import OutboxRelay, OutboxRetry, open_store, parse_store_url
from triotok.supervision import (
    Backoff,
    ChildSpec,
    CircuitBreaker,
    InvalidConfig,
    RateLimit,
    RateLimiter,
    SupervisorSpec,
)
from triotok.transport import RetryPolicy

NOT_FINITE = pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=str)


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


async def _load(key: str) -> str:
    return key


async def _sink(envelope: object) -> None:
    return None


def _cache(**options: Any) -> Callable[[], Awaitable[None]]:
    async def build() -> None:
        error: InvalidConfig | None = None
        async with trio.open_nursery() as nursery:
            try:
                LoadingCache(_load, nursery=nursery, **options)
            except InvalidConfig as exc:  # raised outside the nursery, not in a group
                error = exc
        if error is not None:
            raise error

    return build


def _keyword(build: Callable[..., Any], name: str, *args: Any) -> Callable[[float], Any]:
    """``value -> build(*args, name=value)``."""
    return lambda value: build(*args, **{name: value})


def _postgres_url(**option: float) -> object:
    ((name, value),) = option.items()
    return parse_store_url(f"postgresql://u@h/db?{name}={value}")


def _flag(**flag: float) -> object:
    return load_settings(flags=flag)


# (what is built, field) -> a function of the bad value that builds it.
# One row per public field; ASYNC rows return a coroutine function to await.
SYNC: dict[tuple[str, str], Callable[[float], object]] = {
    ("SupervisorSpec", "period"): lambda v: SupervisorSpec("s", period=v),
    ("SupervisorSpec", "intensity"): lambda v: SupervisorSpec("s", intensity=v),  # type: ignore[arg-type]
    ("Backoff", "min"): lambda v: Backoff(min=v),
    ("Backoff", "max"): lambda v: Backoff(max=v),
    ("Backoff", "jitter"): lambda v: Backoff(jitter=v),
    ("Backoff", "reset_after"): lambda v: Backoff(reset_after=v),
    ("ChildSpec", "shutdown"): lambda v: ChildSpec("c", Echo, shutdown=v),
    ("Mailbox", "capacity"): lambda v: Mailbox(capacity=v),  # type: ignore[arg-type]
    ("DeadLetterOffice", "capacity"): lambda v: DeadLetterOffice(capacity=v),  # type: ignore[arg-type]
    ("DeadLetterOffice", "log_per_second"): lambda v: DeadLetterOffice(log_per_second=v),
    **{
        ("CircuitBreaker", name): _keyword(CircuitBreaker, name, "b")
        for name in (
            "window_size",
            "minimum_calls",
            "half_open_calls",
            "failure_rate_threshold",
            "slow_call_rate_threshold",
            "slow_call_duration",
            "wait_in_open",
        )
    },
    ("RateLimit", "capacity"): lambda v: RateLimit(v, 1.0),  # type: ignore[arg-type]
    ("RateLimit", "refill_per_second"): lambda v: RateLimit(10, v),
    ("RateLimiter", "max_keys"): lambda v: RateLimiter(RateLimit(10, 1.0), max_keys=v),  # type: ignore[arg-type]
    ("RateLimiter.check", "cost"): lambda v: RateLimiter(RateLimit(10, 1.0)).check("k", 0.0, v),  # type: ignore[arg-type]
    ("RetryPolicy", "attempts"): lambda v: RetryPolicy(attempts=v),  # type: ignore[arg-type]
    ("RetryPolicy", "timeout"): lambda v: RetryPolicy(timeout=v),
    ("OutboxRetry", "max_attempts"): lambda v: OutboxRetry(Backoff(), v),  # type: ignore[arg-type]
    **{
        ("OutboxRelay", name): _keyword(OutboxRelay, name, None, _sink)
        for name in (
            "batch_size",
            "lease_seconds",
            "poll_interval",
            "fallback_interval",
            "prune_interval",
            "max_attempts",
        )
    },
    **{
        ("store url", name): _keyword(_postgres_url, name)
        for name in (
            "pool_size",
            "pool_min_size",
            "statement_timeout",
            "connect_timeout",
        )
    },
    ("store url", "busy_timeout"): lambda v: parse_store_url(f"sqlite:///x.db?busy_timeout={v}"),
    **{
        ("Settings", name): _keyword(_flag, name)
        for name in ("graceful_timeout", "tenant_cache_ttl", "tenant_negative_ttl")
    },
}

ASYNC: dict[tuple[str, str], Callable[[float], Callable[[], Awaitable[None]]]] = {
    **{
        ("LoadingCache", name): _keyword(_cache, name)
        for name in ("maxsize", "ttl", "negative_ttl", "jitter", "stale_grace")
    },
}


async def _ask(bad: float) -> None:
    async with open_system() as system:
        ref = await system.spawn(Echo, name="echo")
        await ref.ask("hi", timeout=bad)


async def _listen(bad: float, field: str, tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/x.db") as store, store.listen(**{field: bad}):
        pass  # pragma: no cover


@NOT_FINITE
@pytest.mark.parametrize("case", sorted(SYNC), ids="{0[0]}.{0[1]}".format)
async def test_constructors_refuse_non_finite_numbers(case: tuple[str, str], bad: float) -> None:
    with pytest.raises(InvalidConfig) as info:
        SYNC[case](bad)
    # The store URL options and parse errors name the option itself.
    assert info.value.field == case[1]
    assert isinstance(info.value, ValueError)


@NOT_FINITE
@pytest.mark.parametrize("case", sorted(ASYNC), ids="{0[0]}.{0[1]}".format)
async def test_async_built_components_refuse_non_finite_numbers(
    case: tuple[str, str], bad: float
) -> None:
    with pytest.raises(InvalidConfig) as info:
        await ASYNC[case](bad)()
    assert info.value.field == case[1]


@NOT_FINITE
async def test_ask_timeout_refuses_non_finite_numbers(bad: float) -> None:
    with pytest.raises(InvalidConfig) as info:
        await _ask(bad)
    assert info.value.field == "timeout"


@NOT_FINITE
@pytest.mark.parametrize("field", ["poll_interval", "fallback_interval"])
async def test_store_listen_refuses_non_finite_intervals(
    field: str, bad: float, tmp_path: Path
) -> None:
    with pytest.raises(InvalidConfig) as info:
        await _listen(bad, field, tmp_path)
    assert info.value.field == field


def test_the_issue_example_is_refused() -> None:
    with pytest.raises(InvalidConfig, match="period: must be finite, got inf"):
        SupervisorSpec("s", period=math.inf)


# ----------------------------------------------------------------------------- the helpers


def test_seconds() -> None:
    assert seconds("f", 0) == 0.0
    assert isinstance(seconds("f", 2), float)
    assert seconds("f", None, allow_none=True) is None
    assert seconds("f", math.inf, allow_inf=True) == math.inf
    for bad, message in [
        (None, "f: must be a number of seconds, got None"),
        (True, "f: must be a number of seconds, got True"),
        ("1", "f: must be a number of seconds, got '1'"),
        (math.nan, "f: must be finite, got nan"),
        (-math.inf, "f: must be finite, got -inf"),
        (-1, "f: must not be negative, got -1"),
    ]:
        with pytest.raises(InvalidConfig) as info:
            seconds("f", bad)
        assert str(info.value) == message
    with pytest.raises(InvalidConfig, match="f: must be finite, got -inf"):
        seconds("f", -math.inf, allow_inf=True)  # only +inf, and only when asked
    with pytest.raises(InvalidConfig, match="f: must be positive, got 0"):
        seconds("f", 0, allow_zero=False)


def test_positive_int() -> None:
    assert positive_int("n", 1) == 1
    assert positive_int("n", 0, allow_zero=True) == 0
    for bad, message in [
        (1.0, "n: must be an int, got 1.0"),
        (True, "n: must be an int, got True"),
        (0, "n: must be at least 1, got 0"),
    ]:
        with pytest.raises(InvalidConfig) as info:
            positive_int("n", bad)
        assert str(info.value) == message
    with pytest.raises(InvalidConfig, match="n: must not be negative, got -1"):
        positive_int("n", -1, allow_zero=True)


def test_rate_percentage_fraction() -> None:
    assert rate("r", 5) == 5.0
    assert rate("r", 0, allow_zero=True) == 0.0
    assert percentage("p", 100) == 100.0
    assert fraction("j", 0.0) == 0.0
    assert fraction("j", 3.0, maximum=None) == 3.0
    for call, message in [
        (lambda: rate("r", 0), "r: must be positive, got 0"),
        (lambda: rate("r", -1, allow_zero=True), "r: must not be negative, got -1"),
        (lambda: percentage("p", 0), "p: must be a percentage in (0, 100], got 0"),
        (lambda: percentage("p", math.nan), "p: must be finite, got nan"),
        (lambda: fraction("j", 1.0), "j: must be in [0, 1), got 1.0"),
        (lambda: fraction("j", -0.5, maximum=None), "j: must not be negative, got -0.5"),
        (lambda: fraction("j", math.inf, maximum=None), "j: must be finite, got inf"),
    ]:
        with pytest.raises(InvalidConfig) as info:
            call()
        assert str(info.value) == message
