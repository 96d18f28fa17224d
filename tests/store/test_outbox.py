"""Outbox claiming, leasing, failure, pruning, and inbox dedupe on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from triotok._exceptions import InvalidConfig
from triotok.store import Store


class Boom(Exception):
    pass


async def _publish(store: Store, n: int, *, prefix: str = "e") -> list[int]:
    ids = []
    async with store.transaction() as tx:
        for i in range(n):
            ids.append(await tx.publish(b"p", event_id=f"{prefix}{i}", event_type="t.x"))
    return ids


async def test_claim_returns_committed_rows_in_id_order_up_to_limit(store: Store) -> None:
    ids = await _publish(store, 5)
    first = await store.claim_outbox("node-a", limit=3)
    assert [r.id for r in first] == ids[:3]
    assert all(r.claimed_by == "node-a" and r.attempts == 1 for r in first)
    assert all(r.claimed_until is not None and r.claimed_until > r.created_at for r in first)
    second = await store.claim_outbox("node-b", limit=10)
    assert [r.id for r in second] == ids[3:]
    assert await store.claim_outbox("node-c") == []


async def test_claim_limit_must_be_positive(store: Store) -> None:
    with pytest.raises(InvalidConfig, match="limit"):
        await store.claim_outbox("node-a", limit=0)


async def test_uncommitted_rows_are_not_claimable(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.publish(b"p", event_id="pending", event_type="t.x")
        if store.backend == "postgresql":
            # Another connection: the row is not committed yet.
            assert await store.claim_outbox("node-a") == []
    assert [r.event_id for r in await store.claim_outbox("node-a")] == ["pending"]


async def test_delivered_rows_are_not_claimed_again_and_can_be_pruned(store: Store) -> None:
    ids = await _publish(store, 3)
    rows = await store.claim_outbox("node-a")
    assert await store.mark_delivered([r.id for r in rows[:2]]) == 2
    assert await store.mark_delivered([rows[0].id]) == 0  # idempotent
    assert await store.mark_delivered([]) == 0
    # The undelivered one is still leased to node-a.
    assert await store.claim_outbox("node-b") == []
    assert await store.prune_delivered(timedelta(days=1)) == 0  # too recent
    assert await store.prune_delivered(datetime.now(UTC) + timedelta(seconds=1)) == 2
    left = await store.fetch("SELECT id, delivered_at FROM outbox")
    assert left == [{"id": ids[2], "delivered_at": None}]


async def test_expired_lease_makes_a_row_claimable_again(store: Store) -> None:
    await _publish(store, 1)
    [row] = await store.claim_outbox("node-a", lease_seconds=-1)  # lease already over
    [again] = await store.claim_outbox("node-b")
    assert again.id == row.id
    assert again.claimed_by == "node-b"
    assert again.attempts == 2


async def test_mark_failed_records_the_error_and_delays_the_retry(store: Store) -> None:
    await _publish(store, 1)
    [row] = await store.claim_outbox("node-a")
    await store.mark_failed(row.id, "broker said no", datetime.now(UTC) + timedelta(hours=1))
    assert await store.claim_outbox("node-a") == []
    await store.mark_failed(
        row.id, "broker said no again", datetime.now(UTC) - timedelta(seconds=1)
    )
    [retried] = await store.claim_outbox("node-a")
    assert retried.id == row.id
    assert retried.last_error == "broker said no again"
    assert retried.attempts == 2


async def test_publish_with_a_future_available_at_waits(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.publish(
            b"p",
            event_id="later",
            event_type="t.x",
            available_at=datetime.now(UTC) + timedelta(hours=1),
        )
    assert await store.claim_outbox("node-a") == []


async def test_concurrent_claimers_never_get_the_same_row(store: Store) -> None:
    ids = await _publish(store, 120)
    claimed: dict[str, list[int]] = {}

    async def claimer(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while rows := await store.claim_outbox(name, limit=7):
            mine.extend(r.id for r in rows)
            await store.mark_delivered([r.id for r in rows])

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(claimer, f"relay-{i}")
    everything = [i for ids_of in claimed.values() for i in ids_of]
    assert len(everything) == len(set(everything))  # nobody got a row twice
    assert sorted(everything) == ids


async def test_inbox_dedupes_redelivery(store: Store) -> None:
    async def handle(event_id: str) -> bool:
        async with store.transaction() as tx:
            if not await tx.inbox_seen("projector", event_id):
                return False
            await tx.execute(
                "INSERT INTO audit_log (actor, action, resource) VALUES ($1, $2, $3)",
                "projector",
                "applied",
                event_id,
            )
            return True

    assert await handle("e1") is True
    assert await handle("e1") is False  # redelivery: no second effect
    assert await handle("e2") is True
    assert int(await store.fetchval("SELECT count(*) FROM audit_log")) == 2
    # Another consumer has its own record of the same event.
    async with store.transaction() as tx:
        assert await tx.inbox_seen("mailer", "e1") is True


async def test_inbox_record_rolls_back_with_the_effect(store: Store) -> None:
    async def record_then_fail() -> None:
        async with store.transaction() as tx:
            assert await tx.inbox_seen("projector", "e1") is True
            raise Boom

    with pytest.raises(Boom):
        await record_then_fail()
    async with store.transaction() as tx:
        assert await tx.inbox_seen("projector", "e1") is True
    assert await store.prune_inbox(timedelta(days=1)) == 0
    assert await store.prune_inbox(datetime.now(UTC) + timedelta(seconds=1)) == 1
