"""Bus failures: retry timing and counts, classification, the dead-letter queue and replays."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from triotok.actors import ActorCrashed, AskTimeout, MailboxFull
from triotok.store import ConflictError, NotFound
from triotok.supervision import Backoff, BackoffState
from triotok.testing import open_test_system
from triotok.transport import (
    Envelope,
    InvalidConfig,
    PermanentError,
    RetryPolicy,
    SchemaError,
    TransientError,
    is_retryable,
)

from .test_bus_support import (
    NO_JITTER,
    OrderPaid,
    ProductCreated,
    Recorder,
    Seen,
    env,
    handled,
    open_bus,
)


def always(error: BaseException) -> Any:
    return lambda envelope: error


def _tree_node(system: Any, path: str) -> dict[str, Any]:
    [node] = [n for n in system.nodes() if n["path"] == path]
    found: dict[str, Any] = node
    return found


# ---------------------------------------------------------------------------- retries


async def test_retry_delays_follow_the_backoff_state(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, log, always(TransientError("down")), name="r")
        await bus.subscribe("product.*", ref)
        sent = env(ProductCreated("k", 1))
        await bus.deliver(sent)  # returns once dead-lettered
        [dead] = await bus.dead_letters.list()
    expected = BackoffState(NO_JITTER.backoff)
    delays = [expected.next_delay(0.0) for _ in range(4)]
    assert delays == [0.1, 0.2, 0.4, 0.8]
    times = [s.at for s in log]
    assert [round(b - a, 9) for a, b in itertools.pairwise(times)] == delays
    assert [s.retry for s in log] == [0, 1, 2, 3, 4]
    assert dead.attempts == 5
    assert dead.error_type == "TransientError"
    assert dead.error_message == "down"
    assert dead.subscriber == "/test/r"
    assert dead.pattern == "product.*"
    assert dead.group is None
    assert dead.envelope.id == sent.id
    assert dead.envelope.retry_count == 4
    assert (dead.source, dead.reason) == ("bus", "max_attempts")
    assert bus.statistics().retries == 4


async def test_jitter_stretches_each_delay_like_the_backoff_state(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []
    policy = RetryPolicy(attempts=4, backoff=Backoff(min=1.0, max=3.0, jitter=0.5))
    async with (
        open_test_system(intensity=100) as system,
        open_bus(system, retry=policy, rng=random.Random(7)) as bus,
    ):
        ref = await system.spawn(Recorder, log, always(TransientError("down")), name="r")
        await bus.subscribe("*", ref)
        await bus.deliver(env(ProductCreated("k", 1)))
    expected = BackoffState(policy.backoff, random.Random(7))
    delays = [expected.next_delay(0.0) for _ in range(3)]
    times = [s.at for s in log]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx(delays)
    for delay, base in zip(delays, (1.0, 2.0, 3.0), strict=True):
        assert base <= delay <= base * 1.5


async def test_an_event_that_succeeds_on_a_retry_is_not_dead_lettered(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []

    def twice(envelope: Envelope) -> BaseException | None:
        return ConnectionError("flaky") if envelope.retry_count < 2 else None

    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, twice, name="r"))
        await bus.deliver(env(ProductCreated("k", 1)))
        assert await bus.dead_letters.list() == []
        assert bus.statistics().handled == 1
    assert [(s.retry, s.ok) for s in log] == [(0, False), (1, False), (2, True)]


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("bad data"),
        SchemaError("unknown field"),
        InvalidConfig("x", "never valid"),  # a TriotokError with retryable=False
    ],
)
async def test_final_errors_are_dead_lettered_at_once(
    autojump_clock: MockClock, error: Exception
) -> None:
    log: list[Seen] = []
    async with open_test_system() as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, always(error), name="r"))
        await bus.deliver(env(ProductCreated("k", 1)))
        [dead] = await bus.dead_letters.list()
    assert len(log) == 1
    assert dead.attempts == 1
    assert dead.error_type == type(error).__name__
    assert dead.envelope.retry_count == 0


async def test_a_slow_subscriber_is_retried_after_the_ask_timeout(
    autojump_clock: MockClock,
) -> None:
    class Slow(Recorder):
        async def receive(self, message: Any) -> Any:
            await trio.sleep(5)
            return await super().receive(message)

    log: list[Seen] = []
    policy = RetryPolicy(attempts=2, backoff=NO_JITTER.backoff, timeout=1.0)
    async with open_test_system() as system, open_bus(system, retry=policy) as bus:
        await bus.subscribe("*", await system.spawn(Slow, log, name="slow"))
        await bus.deliver(env(ProductCreated("k", 1)))
        [dead] = await bus.dead_letters.list()
        assert dead.error_type == "AskTimeout"
        assert dead.attempts == 2
        await system.advance(20)
    # At least once: the actor still handled both asks after they timed out.
    assert [s.retry for s in log] == [0, 1]


def test_classification() -> None:
    def crashed(cause: Exception) -> ActorCrashed:
        return ActorCrashed("/app/x", cause)

    assert is_retryable(crashed(TransientError("x")))
    assert is_retryable(crashed(ValueError("x")))
    assert is_retryable(crashed(MailboxFull("/app/y", 1)))  # retryable=True TriotokError
    assert not is_retryable(crashed(PermanentError("x")))
    assert not is_retryable(crashed(SchemaError("x")))
    assert not is_retryable(crashed(InvalidConfig("f", "x")))
    assert is_retryable(AskTimeout("/app/x", 1.0))  # the hand-over failed, not the handler


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"backoff": 0.1}, "backoff"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": "1"}, "timeout"),
    ],
)
def test_retry_policy_validation(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig, match=field):
        RetryPolicy(**options)


# ---------------------------------------------------------------------------- the DLQ


async def test_list_filters_by_type_subscriber_and_group(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    fail = always(PermanentError("no"))
    async with open_test_system() as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, fail, name="a"))
        await bus.subscribe("order.*", await system.spawn(Recorder, log, fail, name="b"), group="g")
        await bus.deliver(env(ProductCreated("k", 1)))
        await bus.deliver(env(OrderPaid("o", 2)))
        dlq = bus.dead_letters
        assert len(await dlq.list()) == 3
        assert [d.envelope.payload.n for d in await dlq.list(subscriber="/test/a")] == [1, 2]
        assert [d.subscriber for d in await dlq.list(group="g")] == ["/test/b"]
        paid = await dlq.list(event_type="order.paid")
        assert sorted(d.subscriber for d in paid) == ["/test/a", "/test/b"]
        assert len(await dlq.list(limit=2)) == 2
        stats = await dlq.statistics()
        assert stats.size == 3
        assert stats.by_subscriber == {"/test/a": 2, "/test/b": 1}
        assert stats.by_event_type == {"product.created": 1, "order.paid": 2}
        view = (await dlq.list(group="g"))[0].as_dict()
        assert view["error"] == {"type": "PermanentError", "message": "no"}
        assert view["group"] == "g"


async def test_the_tree_shows_dead_letter_counts(autojump_clock: MockClock) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        fail = always(PermanentError("no"))
        await bus.subscribe("*", await system.spawn(Recorder, [], fail, name="a"))
        await bus.deliver(env(ProductCreated("k", 1)))
        await bus.deliver(env(ProductCreated("k", 2)))
        components = _tree_node(system, "/test/bus")["components"]
    assert components["dead_letter_queue"]["size"] == 2
    assert components["dead_letter_queue"]["by_subscriber"] == {"/test/a": 2}
    assert components["bus"]["dead_lettered"] == 2
    assert components["bus"]["by_subscription"][0]["dead_lettered"] == 2


class Switch:
    """A script that fails permanently until switched off."""

    def __init__(self) -> None:
        self.failing = True

    def __call__(self, envelope: Envelope) -> BaseException | None:
        return PermanentError("broken") if self.failing else None


async def test_replay_one_delivers_again_with_a_fresh_retry_count(
    autojump_clock: MockClock,
) -> None:
    log: list[Seen] = []
    switch = Switch()
    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, switch, name="r"))
        await bus.deliver(env(ProductCreated("k", 1)))
        await bus.deliver(env(ProductCreated("k", 2)))
        first, second = await bus.dead_letters.list()
        switch.failing = False
        await bus.dead_letters.replay(first.id)
        with pytest.raises(NotFound):
            await bus.dead_letters.replay(first.id)  # gone from the queue
        with pytest.raises(NotFound):
            await bus.dead_letters.replay(12345)
        await system.settle()
        assert [d.id for d in await bus.dead_letters.list()] == [second.id]
        assert (await bus.dead_letters.statistics()).replayed == 1
    assert [(s.n, s.retry) for s in handled(log)] == [(1, 0)]


async def test_replay_where_and_replay_all(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    switch = Switch()
    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        await bus.subscribe("*", await system.spawn(Recorder, log, switch, name="r"))
        for n in range(4):
            await bus.deliver(env(ProductCreated("k", n)))
        await bus.deliver(env(OrderPaid("o", 10)))
        switch.failing = False
        dlq = bus.dead_letters
        assert await dlq.replay_where(event_type="order.paid") == 1
        assert await dlq.replay_where(lambda d: d.envelope.payload.n % 2 == 0) == 2
        assert await dlq.replay_where(subscriber="/test/nobody") == 0
        assert await dlq.replay_all() == 2
        await system.settle()
        assert await dlq.list() == []
    assert sorted(s.n for s in handled(log)) == [0, 1, 2, 3, 10]


async def test_a_replay_goes_back_to_the_group(autojump_clock: MockClock) -> None:
    log: list[Seen] = []
    switch = Switch()
    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        for name in ("a", "b"):
            ref = await system.spawn(Recorder, log, switch, name=name)
            await bus.subscribe("*", ref, group="g")
        await bus.deliver(env(ProductCreated("k", 1)))
        [dead] = await bus.dead_letters.list()
        assert dead.group == "g"
        switch.failing = False
        assert await bus.dead_letters.replay_all() == 1
        await system.settle()
    [ok] = handled(log)
    assert ok.path == dead.subscriber  # same key, same membership: same member


async def test_entries_of_a_removed_subscription_stay_in_the_queue(
    autojump_clock: MockClock,
) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        ref = await system.spawn(Recorder, [], always(PermanentError("no")), name="r")
        await bus.subscribe("*", ref)
        await bus.deliver(env(ProductCreated("k", 1)))
        await bus.unsubscribe("*", ref)
        assert await bus.dead_letters.replay_all() == 0
        [kept] = await bus.dead_letters.list()
        with pytest.raises(ConflictError):
            await bus.dead_letters.replay(kept.id)
        assert len(await bus.dead_letters.list()) == 1


async def test_purge_by_filter_and_all(autojump_clock: MockClock) -> None:
    async with open_test_system(intensity=100) as system, open_bus(system) as bus:
        fail = always(PermanentError("no"))
        await bus.subscribe("*", await system.spawn(Recorder, [], fail, name="r"))
        for n in range(3):
            await bus.deliver(env(ProductCreated("k", n)))
        await bus.deliver(env(OrderPaid("o", 9)))
        dlq = bus.dead_letters
        assert await dlq.purge_where(event_type="order.paid") == 1
        [first, *_] = await dlq.list()
        await dlq.purge(first.id)
        with pytest.raises(NotFound):
            await dlq.purge(first.id)
        assert await dlq.purge_where() == 2
        assert await dlq.list() == []
        stats = await dlq.statistics()
        assert (stats.size, stats.added, stats.purged, stats.replayed) == (0, 4, 4, 0)
