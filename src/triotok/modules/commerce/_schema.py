"""The commerce module's tables: products (with their stock) and reservations.

Skus are unique per tenant (an index, so two nodes of the cluster cannot
take one sku). ``CHECK (0 <= reserved AND reserved <= on_hand)`` is the last
line behind the conditional updates that keep stock consistent: no write can
commit an oversold or negative stock. A reservation row per (order, product)
records what an order holds and whether it was released or committed, so
release and commit act once.
"""

from __future__ import annotations

from ...store import Migration, Schema

__all__ = ("SCHEMA",)


def _tables(text: str, integer: str, big: str, stamp: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE commerce_products (
            tenant_id {text} NOT NULL,
            id {text} NOT NULL,
            sku {text} NOT NULL,
            title {text} NOT NULL,
            description {text} NOT NULL,
            price {big} NOT NULL CHECK (price >= 0),
            currency {text} NOT NULL,
            status {text} NOT NULL,
            attributes {text} NOT NULL,
            on_hand {big} NOT NULL,
            reserved {big} NOT NULL,
            created_at {stamp} NOT NULL,
            updated_at {stamp} NOT NULL,
            version {integer} NOT NULL,
            PRIMARY KEY (tenant_id, id),
            CHECK (reserved >= 0 AND reserved <= on_hand))""",
        "CREATE UNIQUE INDEX commerce_products_sku ON commerce_products (tenant_id, sku)",
        "CREATE INDEX commerce_products_status ON commerce_products (tenant_id, status, id)",
        f"""CREATE TABLE commerce_reservations (
            tenant_id {text} NOT NULL,
            order_id {text} NOT NULL,
            product_id {text} NOT NULL,
            quantity {big} NOT NULL CHECK (quantity > 0),
            state {text} NOT NULL,
            created_at {stamp} NOT NULL,
            updated_at {stamp} NOT NULL,
            PRIMARY KEY (tenant_id, order_id, product_id),
            FOREIGN KEY (tenant_id, product_id) REFERENCES commerce_products (tenant_id, id))""",
    )


_PRODUCTS = Migration(
    version=1,
    name="commerce_products, commerce_reservations",
    sqlite=_tables("TEXT", "INTEGER", "INTEGER", "TIMESTAMPTZ"),
    postgresql=_tables("text", "integer", "bigint", "timestamptz"),
)

SCHEMA = Schema("commerce", (_PRODUCTS,))
