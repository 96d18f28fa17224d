"""Read-your-writes and lag: which outbox positions the index has applied.

A consistency token is an outbox position (the ``id`` of an outbox row).
The index *has applied position P for tenant T* when no event of T at or
before P that the index subscribes to is still owed: every such outbox row
is delivered (the relay marks a row delivered only after every subscription
handled or dead-lettered it), dead-lettered (moved out of the outbox), or
already in the index's inbox (applied, its mark not yet written). One
indexed query, on the few undelivered rows (``outbox_pending``).

Invariants and reasons:

* The answer is a watermark: applied(P) implies applied(P') for P' < P, so
  the token of a client's last write covers its earlier ones.
* Tenants do not wait for each other: only T's rows are looked at.
* A waiter is woken when this node applies an event (:class:`Applied`) and
  polls meanwhile, for events applied by other nodes; it waits at most its
  bound, then the caller answers with the index as it is, marked stale.

On L2 a relay marks a row delivered once the *stream* has it, before any
consumer ran, so "delivered" no longer implies "applied". With
``stream_window`` (the search module sets it to its ``max_lag_seconds`` on
L2) a row delivered within the window is owed until the index's inbox has
it, and the token's own row always is: a client reads its own write; events
of others older than the window (the index would already be reported lagging
by then) are not waited for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from ...store import Store, parse_timestamp

__all__ = ("Applied", "LagReport", "has_applied", "measure_lag", "wait_applied")

#: The event families the index applies (its subscriptions), as SQL ``LIKE`` patterns.
FAMILIES = ("content.%", "product.%", "inventory.%")


def _owed(
    consumer: str,
    families: Sequence[str],
    start: int,
    stream_window: float = 0.0,
    position: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE of outbox rows the consumer still owes; its parameters start at ``$start``.

    ``stream_window`` > 0 (L2, where the stream, not the consumer,
    acknowledged a delivered row): rows delivered in the last that many
    seconds are owed until the inbox has them, and so is the row at
    ``position`` (an SQL parameter) whenever it was.
    """
    args: list[Any] = [consumer, *families]
    like = " OR ".join(f"o.event_type LIKE ${start + 1 + i}" for i in range(len(families)))
    pending = "o.delivered_at IS NULL"
    if stream_window > 0:
        args.append(datetime.now(UTC) - timedelta(seconds=stream_window))
        recent = f"o.delivered_at >= ${start + len(args) - 1}"
        mine = f" OR o.id = {position}" if position is not None else ""
        pending = f"({pending} OR {recent}{mine})"
    sql = (
        f"{pending} AND ({like}) AND NOT EXISTS (SELECT 1 FROM inbox i"
        f" WHERE i.consumer = ${start} AND i.event_id = o.event_id)"
    )
    return sql, args


async def has_applied(
    store: Store,
    consumer: str,
    tenant_id: str,
    position: int,
    families: Sequence[str] = FAMILIES,
    *,
    stream_window: float = 0.0,
) -> bool:
    """Whether the index has applied every event of ``tenant_id`` up to ``position``.

    ``stream_window`` > 0 (L2, where "delivered" means "in the stream"): the
    event at ``position`` must be in the inbox, and so must every earlier one
    forwarded in the last ``stream_window`` seconds.
    """
    owed, args = _owed(consumer, families, 3, stream_window, "$1")
    row = await store.fetchval(
        f"SELECT o.id FROM outbox o WHERE o.id <= $1 AND o.tenant_id = $2 AND {owed} LIMIT 1",
        position,
        tenant_id,
        *args,
    )
    return row is None


class Applied:
    """Wakes the tasks waiting for the index: :meth:`notify` after every applied event."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.count = 0

    def notify(self) -> None:
        self.count += 1
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


async def wait_applied(
    check: Callable[[], Any],
    applied: Applied,
    *,
    within: float,
    poll_interval: float = 0.05,
) -> bool:
    """Call ``check`` (async, ``True`` when applied) until true or ``within`` seconds passed.

    Returns the last answer.

    Between checks it waits for this node to apply an event, or at most
    ``poll_interval`` (another node may have applied it).
    """
    deadline = trio.current_time() + within
    while True:
        if await check():
            return True
        remaining = deadline - trio.current_time()
        if remaining <= 0:
            return False
        with trio.move_on_after(min(remaining, poll_interval)):
            await applied.wait()


@dataclass(frozen=True, slots=True)
class LagReport:
    """How far the index is behind the outbox.

    ``applied_position``: every event up to it is applied (the head when
    nothing is owed); ``head_position``: the newest outbox row; ``lag_events``:
    events owed; ``lag_seconds``: age of the oldest owed one.
    """

    applied_position: int
    head_position: int
    lag_events: int
    lag_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def measure_lag(
    store: Store,
    consumer: str,
    families: Sequence[str] = FAMILIES,
    *,
    stream_window: float = 0.0,
) -> LagReport:
    """One look at the outbox: two indexed queries.

    ``stream_window`` > 0 (L2): rows forwarded to the stream in the last
    ``stream_window`` seconds and not yet in the inbox count as owed.
    """
    owed, args = _owed(consumer, families, 1, stream_window)
    row = await store.fetchrow(
        f"SELECT count(*) AS n, min(o.id) AS first, min(o.created_at) AS oldest"
        f" FROM outbox o WHERE {owed}",
        *args,
    )
    head = await store.fetchval("SELECT max(id) FROM outbox")
    head = 0 if head is None else int(head)
    assert row is not None
    owed_count = int(row["n"])
    if not owed_count:
        return LagReport(head, head, 0, 0.0)
    oldest = parse_timestamp(row["oldest"])
    age = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
    return LagReport(
        int(row["first"]) - 1, head, owed_count, max(0.0, math.floor(age * 1000) / 1000)
    )
