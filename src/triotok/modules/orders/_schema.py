"""The orders module's table: one row per order, its items, pricing and history inline.

An order is read and written whole (a list page is one query), so its items,
priced lines and history are JSON text columns; what lists filter on
(``status``, ``placed_by``) are columns with indexes. ``version`` guards
every write (``UPDATE ... WHERE version = $expected``), so two nodes never
both apply a transition to one order.
"""

from __future__ import annotations

from ...store import Migration, Schema

__all__ = ("SCHEMA",)


def _tables(text: str, integer: str, big: str, stamp: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE orders_orders (
            tenant_id {text} NOT NULL,
            id {text} NOT NULL,
            status {text} NOT NULL,
            placed_by {text} NOT NULL,
            items {text} NOT NULL,
            lines {text},
            currency {text},
            total {big} CHECK (total >= 0),
            charge_id {text},
            charge_provider {text},
            tracking_number {text},
            cancel_reason {text},
            refund_id {text},
            history {text} NOT NULL,
            created_at {stamp} NOT NULL,
            updated_at {stamp} NOT NULL,
            version {integer} NOT NULL,
            PRIMARY KEY (tenant_id, id))""",
        "CREATE INDEX orders_orders_status ON orders_orders (tenant_id, status, id)",
        "CREATE INDEX orders_orders_placed_by ON orders_orders (tenant_id, placed_by, id)",
    )


_ORDERS = Migration(
    version=1,
    name="orders_orders",
    sqlite=_tables("TEXT", "INTEGER", "INTEGER", "TIMESTAMPTZ"),
    postgresql=_tables("text", "integer", "bigint", "timestamptz"),
)


def _placements(text: str) -> tuple[str, ...]:
    # The Idempotency-Key an order was placed with, written in the order's own
    # transaction: a retry that takes over a dead node's claim finds the order
    # instead of placing a second one.
    return (
        f"""CREATE TABLE orders_placements (
            tenant_id {text} NOT NULL,
            idempotency_key {text} NOT NULL,
            order_id {text} NOT NULL,
            PRIMARY KEY (tenant_id, idempotency_key))""",
    )


_PLACEMENTS = Migration(
    version=2,
    name="orders_placements",
    sqlite=_placements("TEXT"),
    postgresql=_placements("text"),
)

SCHEMA = Schema("orders", (_ORDERS, _PLACEMENTS))
