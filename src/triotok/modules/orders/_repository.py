"""Orders in the store: loads, guarded writes and keyset lists (newest first).

Invariants:

* Every write runs in the caller's unit of work together with its event and
  audit row. Writes compare ``version`` (``UPDATE ... WHERE version =
  $expected``): a write based on a stale read changes nothing and raises
  :class:`StaleOrder`, whichever node made the newer write.
* A row maps to exactly one state type: the columns a state has are set,
  the others ``NULL`` (:func:`order_of` rebuilds the typed order).
* A list page of any size costs one query.
"""

from __future__ import annotations

import json
from typing import Any

from ..._exceptions import ConflictError
from ...store import Row, Store, UnitOfWork, row_timestamp
from ._lifecycle import (
    Cancelled,
    Change,
    Confirmed,
    Delivered,
    Item,
    Line,
    Order,
    Paid,
    Payment,
    Pending,
    Pricing,
    Shipped,
    State,
    Status,
)

__all__ = ("OrderPage", "OrderRepository", "StaleOrder", "order_of")

COLUMNS = (
    "tenant_id, id, status, placed_by, items, lines, currency, total, charge_id,"
    " charge_provider, tracking_number, cancel_reason, refund_id, history, created_at,"
    " updated_at, version"
)


class StaleOrder(ConflictError):
    """The order changed since it was read (another node, or a stale activation).

    A :class:`ConflictError`: the entity region reloads the state and retries
    the command once.
    """

    code = "stale_version"


class OrderPage:
    """One page of a list: the orders and the id to continue after (``None``: the end)."""

    __slots__ = ("after", "orders")

    def __init__(self, orders: list[Order[Any]], after: str | None) -> None:
        self.orders = orders
        self.after = after


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _pricing(row: Row) -> Pricing | None:
    if row["lines"] is None:
        return None
    lines = tuple(
        Line(str(x["product_id"]), int(x["quantity"]), int(x["unit_price"]), str(x["currency"]))
        for x in json.loads(str(row["lines"]))
    )
    return Pricing(lines, str(row["currency"]), int(row["total"]))


def _state(row: Row) -> State:
    status = Status(row["status"])
    if status is Status.PENDING:
        return Pending()
    pricing = _pricing(row)
    payment = None
    if row["charge_id"] is not None:
        assert pricing is not None  # charged orders are priced
        payment = Payment(
            str(row["charge_id"]), str(row["charge_provider"]), pricing.total, pricing.currency
        )
    if status is Status.CANCELLED:
        refund_id = row["refund_id"]
        return Cancelled(
            str(row["cancel_reason"]),
            pricing,
            payment,
            None if refund_id is None else str(refund_id),
        )
    assert pricing is not None  # every state past pending is priced
    if status is Status.CONFIRMED:
        return Confirmed(pricing)
    assert payment is not None  # every state past confirmed is paid
    if status is Status.PAID:
        return Paid(pricing, payment)
    tracking = str(row["tracking_number"])
    if status is Status.SHIPPED:
        return Shipped(pricing, payment, tracking)
    return Delivered(pricing, payment, tracking)


def order_of(row: Row) -> Order[Any]:
    """The typed order a row holds."""
    items = tuple(Item(str(x["product_id"]), int(x["quantity"])) for x in json.loads(row["items"]))
    history = tuple(
        Change(Status(c["status"]), row_timestamp(c["at"]), c["reason"])
        for c in json.loads(str(row["history"]))
    )
    return Order(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        items=items,
        placed_by=str(row["placed_by"]),
        state=_state(row),
        history=history,
        created_at=row_timestamp(row["created_at"]),
        updated_at=row_timestamp(row["updated_at"]),
        version=int(row["version"]),
    )


def _values(order: Order[Any]) -> list[Any]:
    """The columns after ``tenant_id, id`` as :data:`COLUMNS` lists them."""
    state = order.state
    pricing: Pricing | None = getattr(state, "pricing", None)
    payment: Payment | None = getattr(state, "payment", None)
    lines = None
    if pricing is not None:
        lines = _json(
            [
                {
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "currency": line.currency,
                }
                for line in pricing.lines
            ]
        )
    return [
        order.status.value,
        order.placed_by,
        _json([{"product_id": i.product_id, "quantity": i.quantity} for i in order.items]),
        lines,
        None if pricing is None else pricing.currency,
        None if pricing is None else pricing.total,
        None if payment is None else payment.charge_id,
        None if payment is None else payment.provider,
        state.tracking_number if isinstance(state, Shipped | Delivered) else None,
        state.reason if isinstance(state, Cancelled) else None,
        state.refund_id if isinstance(state, Cancelled) else None,
        _json(
            [
                {"status": c.status.value, "at": c.at.isoformat(), "reason": c.reason}
                for c in order.history
            ]
        ),
        order.created_at,
        order.updated_at,
        order.version,
    ]


class OrderRepository:
    """Reads and writes of orders; one instance per application."""

    def __init__(self) -> None:
        self.queries = 0  # statements sent by reads (the no-N+1 tests count them)

    async def load(
        self, store: Store | UnitOfWork, tenant_id: str, order_id: str
    ) -> Order[Any] | None:
        """The order, or ``None`` if there is none."""
        self.queries += 1
        row = await store.fetchrow(
            f"SELECT {COLUMNS} FROM orders_orders WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            order_id,
        )
        return None if row is None else order_of(row)

    async def list(
        self,
        store: Store,
        tenant_id: str,
        *,
        status: str | None = None,
        placed_by: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> OrderPage:
        """Orders newest first (descending id) before ``before``, filtered; one query."""
        where = ["tenant_id = $1"]
        args: list[Any] = [tenant_id]
        if before is not None:
            args.append(before)
            where.append(f"id < ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        if placed_by is not None:
            args.append(placed_by)
            where.append(f"placed_by = ${len(args)}")
        args.append(limit + 1)
        self.queries += 1
        rows = await store.fetch(
            f"SELECT {COLUMNS} FROM orders_orders WHERE {' AND '.join(where)}"
            f" ORDER BY id DESC LIMIT ${len(args)}",
            *args,
        )
        more = len(rows) > limit
        orders = [order_of(r) for r in rows[:limit]]
        return OrderPage(orders, orders[-1].id if more and orders else None)

    async def insert(self, tx: UnitOfWork, order: Order[Any]) -> None:
        await tx.execute(
            f"INSERT INTO orders_orders ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
            " $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            order.tenant_id,
            order.id,
            *_values(order),
        )

    async def record_placement(self, tx: UnitOfWork, order: Order[Any], key: str) -> None:
        """Remember that ``order`` was placed with the ``Idempotency-Key`` ``key``."""
        await tx.execute(
            "INSERT INTO orders_placements (tenant_id, idempotency_key, order_id)"
            " VALUES ($1, $2, $3)",
            order.tenant_id,
            key,
            order.id,
        )

    async def placed_with(self, store: Store, tenant_id: str, key: str) -> str | None:
        """The id of the order placed with the ``Idempotency-Key`` ``key``, if any."""
        found = await store.fetchval(
            "SELECT order_id FROM orders_placements WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id,
            key,
        )
        return None if found is None else str(found)

    async def save(self, tx: UnitOfWork, order: Order[Any], expected_version: int) -> None:
        """Write ``order`` over the row at ``expected_version``; else :class:`StaleOrder`."""
        changed = await tx.execute(
            "UPDATE orders_orders SET status = $1, placed_by = $2, items = $3, lines = $4,"
            " currency = $5, total = $6, charge_id = $7, charge_provider = $8,"
            " tracking_number = $9, cancel_reason = $10, refund_id = $11, history = $12,"
            " created_at = $13, updated_at = $14, version = $15"
            " WHERE tenant_id = $16 AND id = $17 AND version = $18",
            *_values(order),
            order.tenant_id,
            order.id,
            expected_version,
        )
        if changed != 1:
            raise StaleOrder(f"order {order.id} changed since version {expected_version}")
