"""``has_applied`` and ``measure_lag`` on the outbox and inbox rows themselves, L1 and L2.

On L1 a delivered row is an applied one (the relay marks it after the
subscribers ran). On L2 the relay marks a row delivered once the *stream*
acknowledged it: with ``stream_window`` such a row is still owed until the
consumer's inbox has it, and the token's own row always is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from triotok.modules.search import has_applied
from triotok.modules.search._consistency import measure_lag
from triotok.store import Store

CONSUMER = "search"


async def _row(store: Store, tenant: str, *, delivered: datetime | None) -> tuple[int, str]:
    event_id = str(uuid.uuid4())
    await store.execute(
        "INSERT INTO outbox (event_id, event_type, tenant_id, payload, delivered_at)"
        " VALUES ($1, 'product.created', $2, $3, $4)",
        event_id,
        tenant,
        b"x",
        delivered,
    )
    position = await store.fetchval("SELECT id FROM outbox WHERE event_id = $1", event_id)
    return int(position), event_id


async def _apply(store: Store, event_id: str) -> None:
    await store.execute(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)", CONSUMER, event_id
    )


async def test_on_l2_a_row_in_the_stream_is_owed_until_the_inbox_has_it(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    old, old_id = await _row(store, "acme", delivered=now - timedelta(hours=1))
    recent, recent_id = await _row(store, "acme", delivered=now)
    l1 = {"stream_window": 0.0}
    l2 = {"stream_window": 30.0}
    # L1: delivered means applied.
    assert await has_applied(store, CONSUMER, "acme", recent, **l1)
    assert (await measure_lag(store, CONSUMER, **l1)).lag_events == 0
    # L2: the recent row is owed; the token's own row is owed whenever it was delivered.
    assert not await has_applied(store, CONSUMER, "acme", recent, **l2)
    assert not await has_applied(store, CONSUMER, "acme", old, **l2)
    lag = await measure_lag(store, CONSUMER, **l2)
    assert (lag.lag_events, lag.applied_position) == (1, recent - 1)
    await _apply(store, recent_id)
    # Another tenant's rows never matter; an old row of others is not waited for.
    assert await has_applied(store, CONSUMER, "acme", recent, **l2)
    assert not await has_applied(store, CONSUMER, "acme", old, **l2)
    await _apply(store, old_id)
    assert await has_applied(store, CONSUMER, "acme", old, **l2)
    other, _ = await _row(store, "globex", delivered=now)
    assert await has_applied(store, CONSUMER, "acme", other, **l2)
    assert not await has_applied(store, CONSUMER, "globex", other, **l2)
    # Undelivered rows are owed on both levels.
    pending, pending_id = await _row(store, "acme", delivered=None)
    assert not await has_applied(store, CONSUMER, "acme", pending, **l1)
    assert not await has_applied(store, CONSUMER, "acme", pending, **l2)
    await _apply(store, pending_id)
    assert await has_applied(store, CONSUMER, "acme", pending, **l1)
    assert await has_applied(store, CONSUMER, "acme", pending, **l2)
