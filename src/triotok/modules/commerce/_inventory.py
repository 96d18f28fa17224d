"""Reservations: an order's stock, reserved all or nothing, released or committed once.

What the orders saga calls when ``order.placed``, a cancellation or a
shipment reaches commerce. Each call is one unit of work that

1. records ``(consumer, event id)`` in the inbox (``tx.inbox_seen``): a
   redelivered event finds it and changes nothing (``duplicate``);
2. changes stock with conditional updates the database evaluates on the row
   as it is (``... WHERE status = 'active' AND on_hand - reserved >= $qty``),
   so no interleaving of nodes, workers or retries can oversell;
3. writes the resulting event, caused by the incoming one (same correlation
   id and trace), in the same transaction.

Invariants:

* ``reserve`` is all or nothing: the items are tried in product-id order
  (two orders never wait for each other's rows in opposite orders) inside a
  savepoint; the first short item rolls the savepoint back, so a rejected
  order holds nothing, and ``inventory.rejected`` names every short item.
* An order's reservation rows (``commerce_reservations``) move
  ``reserved -> released`` or ``reserved -> committed`` once: ``release``
  gives the units back to ``available``; ``commit`` (shipping) takes them out
  of ``on_hand`` and ``reserved`` together, so ``available`` does not move.
* Every call that is not a duplicate writes exactly one event.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import InvalidInput
from ...store import Store, UnitOfWork
from ...transport import Envelope
from ._events import (
    InventoryCommitted,
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    ReservedLine,
    Shortage,
    StockLine,
)
from ._model import MAX_DELTA, parse_product_id

__all__ = ("CONSUMER", "Inventory", "Item", "Outcome", "ReservationResult")

#: The inbox consumer group of commerce's reservations (one per cluster).
CONSUMER = "commerce-inventory"
#: Distinct products one order may reserve.
MAX_ITEMS = 100
_SAVEPOINT = "commerce_reserve"


@dataclass(frozen=True, slots=True)
class Item:
    """``quantity`` units of one product (ids are UUIDs)."""

    product_id: str
    quantity: int


class Outcome(enum.StrEnum):
    """What a reservation call did."""

    RESERVED = "reserved"
    REJECTED = "rejected"
    RELEASED = "released"
    COMMITTED = "committed"
    DUPLICATE = "duplicate"  # the event was handled before: nothing done, nothing written


@dataclass(frozen=True, slots=True)
class ReservationResult:
    """The outcome, the stock lines it moved, the shortages, and the event it wrote."""

    order_id: str
    outcome: Outcome
    lines: tuple[StockLine | ReservedLine, ...] = ()
    shortages: tuple[Shortage, ...] = ()
    event: Envelope | None = None


def merge_items(items: Iterable[Item]) -> list[Item]:
    """One item per product (quantities summed), in product-id order; validated."""
    totals: dict[str, int] = {}
    for item in items:
        quantity = item.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidInput("an item's quantity is an integer >= 1", field="quantity")
        product_id = parse_product_id(item.product_id)
        totals[product_id] = totals.get(product_id, 0) + quantity
    if not totals:
        raise InvalidInput("an order reserves at least one item", field="items")
    if len(totals) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} products per order", field="items")
    if any(q > MAX_DELTA for q in totals.values()):
        raise InvalidInput(f"an item's quantity is at most {MAX_DELTA}", field="quantity")
    return [Item(p, totals[p]) for p in sorted(totals)]


def _line(product_id: str, quantity: int, row: Any) -> StockLine:
    return StockLine(
        uuid.UUID(product_id),
        quantity,
        int(row["on_hand"]),
        int(row["reserved"]),
        int(row["version"]),
    )


class Inventory:
    """The reservation API (see the module docstring); stateless, one per application."""

    def __init__(self, consumer: str = CONSUMER, actor: str = "commerce") -> None:
        self.consumer = consumer
        self.actor = actor

    async def reserve(
        self, store: Store, cause: Envelope, order_id: str, items: Sequence[Item]
    ) -> ReservationResult:
        """Reserve every item for ``order_id`` or none (``inventory.reserved|rejected``)."""
        wanted = merge_items(items)
        tenant_id = _tenant(cause)
        async with store.transaction() as tx:
            if not await tx.inbox_seen(self.consumer, str(cause.id)):
                return ReservationResult(order_id, Outcome.DUPLICATE)
            held = await tx.fetchval(
                "SELECT count(*) FROM commerce_reservations WHERE tenant_id = $1 AND order_id = $2",
                tenant_id,
                order_id,
            )
            if held:  # reserved under another event id: never twice for one order
                return ReservationResult(order_id, Outcome.DUPLICATE)
            now = datetime.now(UTC)
            await tx.execute(f"SAVEPOINT {_SAVEPOINT}")
            lines = await self._reserve_all(tx, tenant_id, order_id, wanted, now)
            if lines is None:
                await tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                shortages = await self._shortages(tx, tenant_id, wanted)
                payload: Any = InventoryRejected(order_id, shortages)
                result = ReservationResult(order_id, Outcome.REJECTED, shortages=shortages)
            else:
                payload = InventoryReserved(order_id, lines)
                result = ReservationResult(order_id, Outcome.RESERVED, lines=lines)
            await tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            envelope = cause.caused(payload, actor_id=self.actor)
            await tx.publish(envelope)
        return _with_event(result, envelope)

    async def release(self, store: Store, cause: Envelope, order_id: str) -> ReservationResult:
        """Give the order's reserved units back (``inventory.released``, lines maybe empty)."""
        return await self._settle(store, cause, order_id, commit=False)

    async def commit(self, store: Store, cause: Envelope, order_id: str) -> ReservationResult:
        """The order shipped: its units leave ``on_hand`` (``inventory.committed``)."""
        return await self._settle(store, cause, order_id, commit=True)

    # ------------------------------------------------------------------ steps

    async def _reserve_all(
        self, tx: UnitOfWork, tenant_id: str, order_id: str, wanted: list[Item], now: datetime
    ) -> tuple[ReservedLine, ...] | None:
        lines = []
        for item in wanted:
            # The price comes from the row the units are reserved on, in the same
            # statement: an order is priced exactly as the stock it holds.
            row = await tx.fetchrow(
                "UPDATE commerce_products SET reserved = reserved + $1, updated_at = $2,"
                " version = version + 1 WHERE tenant_id = $3 AND id = $4"
                " AND status = 'active' AND on_hand - reserved >= $1"
                " RETURNING on_hand, reserved, version, price, currency",
                item.quantity,
                now,
                tenant_id,
                item.product_id,
            )
            if row is None:
                return None
            await tx.execute(
                "INSERT INTO commerce_reservations (tenant_id, order_id, product_id, quantity,"
                " state, created_at, updated_at) VALUES ($1, $2, $3, $4, 'reserved', $5, $5)",
                tenant_id,
                order_id,
                item.product_id,
                item.quantity,
                now,
            )
            lines.append(
                ReservedLine(
                    uuid.UUID(item.product_id),
                    item.quantity,
                    int(row["on_hand"]),
                    int(row["reserved"]),
                    int(row["version"]),
                    int(row["price"]),
                    str(row["currency"]),
                )
            )
        return tuple(lines)

    async def _shortages(
        self, tx: UnitOfWork, tenant_id: str, wanted: list[Item]
    ) -> tuple[Shortage, ...]:
        placeholders = ", ".join(f"${i}" for i in range(2, len(wanted) + 2))
        rows = await tx.fetch(
            "SELECT id, status, on_hand, reserved FROM commerce_products"
            f" WHERE tenant_id = $1 AND id IN ({placeholders})",
            tenant_id,
            *(item.product_id for item in wanted),
        )
        by_id = {str(r["id"]): r for r in rows}
        shortages = []
        for item in wanted:
            row = by_id.get(item.product_id)
            pid = uuid.UUID(item.product_id)
            if row is None or row["status"] != "active":
                shortages.append(Shortage(pid, item.quantity, 0, "unavailable"))
                continue
            available = int(row["on_hand"]) - int(row["reserved"])
            if available < item.quantity:
                shortages.append(Shortage(pid, item.quantity, available, "insufficient_stock"))
        return tuple(shortages)

    async def _settle(
        self, store: Store, cause: Envelope, order_id: str, *, commit: bool
    ) -> ReservationResult:
        tenant_id = _tenant(cause)
        state = "committed" if commit else "released"
        # Committing takes the units out of on_hand as well; both stay >= 0 and
        # reserved <= on_hand, because the units were counted in both.
        on_hand = "on_hand - $1" if commit else "on_hand"
        async with store.transaction() as tx:
            if not await tx.inbox_seen(self.consumer, str(cause.id)):
                return ReservationResult(order_id, Outcome.DUPLICATE)
            held = await tx.fetch(
                "SELECT product_id, quantity FROM commerce_reservations WHERE tenant_id = $1"
                " AND order_id = $2 AND state = 'reserved' ORDER BY product_id",
                tenant_id,
                order_id,
            )
            now = datetime.now(UTC)
            lines = []
            for hold in held:
                product_id, quantity = str(hold["product_id"]), int(hold["quantity"])
                row = await tx.fetchrow(
                    f"UPDATE commerce_products SET on_hand = {on_hand},"
                    " reserved = reserved - $1, updated_at = $2, version = version + 1"
                    " WHERE tenant_id = $3 AND id = $4 AND reserved >= $1"
                    " RETURNING on_hand, reserved, version",
                    quantity,
                    now,
                    tenant_id,
                    product_id,
                )
                if row is None:  # impossible while the reservation row holds the units
                    raise AssertionError(f"reservation of {order_id} lost its units")
                await tx.execute(
                    "UPDATE commerce_reservations SET state = $1, updated_at = $2"
                    " WHERE tenant_id = $3 AND order_id = $4 AND product_id = $5",
                    state,
                    now,
                    tenant_id,
                    order_id,
                    product_id,
                )
                lines.append(_line(product_id, quantity, row))
            payload = (InventoryCommitted if commit else InventoryReleased)(order_id, tuple(lines))
            envelope = cause.caused(payload, actor_id=self.actor)
            await tx.publish(envelope)
        outcome = Outcome.COMMITTED if commit else Outcome.RELEASED
        return ReservationResult(order_id, outcome, lines=tuple(lines), event=envelope)


def _tenant(cause: Envelope) -> str:
    if not cause.tenant_id:
        raise InvalidInput("a reservation's event names its tenant", field="tenant_id")
    return cause.tenant_id


def _with_event(result: ReservationResult, envelope: Envelope) -> ReservationResult:
    return ReservationResult(
        result.order_id, result.outcome, result.lines, result.shortages, envelope
    )
