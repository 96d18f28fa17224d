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

SCHEMA = Schema("orders", (_ORDERS,))
