"""The commerce module's events: products' changes and every stock movement.

Every event carries what read models need without a query: product events
the product after the change (:class:`ProductSnapshot`), inventory events
the stock levels after it (:class:`StockLine`). Reservation events name the
order (``order_id``) they answer, so the orders saga can correlate them; an
order's events reach commerce and back with the same correlation id.
``inventory.reserved`` prices the order: each line carries the product's
price and currency read in the same ``UPDATE`` that reserved its units.

The order events commerce acts on are read through views
(:func:`~triotok.transport.event_view`): the orders module owns them, and
modules never import each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from ...transport import event, event_view

__all__ = (
    "InventoryAdjusted",
    "InventoryCommitted",
    "InventoryRejected",
    "InventoryReleased",
    "InventoryReserved",
    "OrderCancelledView",
    "OrderItemView",
    "OrderPlacedView",
    "OrderReleaseView",
    "OrderShippedView",
    "ProductArchived",
    "ProductCreated",
    "ProductSnapshot",
    "ProductUpdated",
    "ReservedLine",
    "Shortage",
    "StockLine",
)


# Event payload types stay out of the package's public names: the schema
# registry resolves their annotations in the module that defines them, which
# ``fixup_module_metadata`` would rename.
@dataclass(frozen=True, slots=True)
class ProductSnapshot:
    """The product after the change that an event announces."""

    product_id: uuid.UUID
    sku: str
    title: str
    description: str
    price: int
    currency: str
    status: str
    attributes: dict[str, str | int | bool]
    on_hand: int
    reserved: int
    created_at: datetime
    updated_at: datetime
    version: int


@event("product.created")
@dataclass(frozen=True, slots=True)
class ProductCreated:
    """A product was created (as a draft)."""

    product: ProductSnapshot


@event("product.updated")
@dataclass(frozen=True, slots=True)
class ProductUpdated:
    """A product's fields or status changed (``fields``: the fields the command set)."""

    product: ProductSnapshot
    fields: tuple[str, ...] = field(default=())


@event("product.archived")
@dataclass(frozen=True, slots=True)
class ProductArchived:
    """A product was archived (it can no longer be reserved)."""

    product: ProductSnapshot


@dataclass(frozen=True, slots=True)
class StockLine:
    """One product's part in a stock movement, and its levels after it."""

    product_id: uuid.UUID
    quantity: int
    on_hand: int
    reserved: int
    version: int


@dataclass(frozen=True, slots=True)
class Shortage:
    """Why one item of a refused reservation could not be reserved.

    ``reason``: ``insufficient_stock`` (``available`` < ``requested``) or
    ``unavailable`` (no such product, or it is not active).
    """

    product_id: uuid.UUID
    requested: int
    available: int
    reason: str


@event("inventory.adjusted")
@dataclass(frozen=True, slots=True)
class InventoryAdjusted:
    """``on_hand`` changed by ``delta`` (a delivery, a count, a write-off)."""

    line: StockLine
    delta: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReservedLine:
    """One product's reserved units, its levels after it, and its price when reserved."""

    product_id: uuid.UUID
    quantity: int
    on_hand: int
    reserved: int
    version: int
    unit_price: int
    currency: str


# The shape of ``inventory.reserved`` v1 changed (lines gained unit_price and
# currency) before any release: only the orders saga, new with it, produces
# the event, so no stored v1 payload of the older shape exists.
@event("inventory.reserved")
@dataclass(frozen=True, slots=True)
class InventoryReserved:
    """Every item of the order is reserved (all or nothing), priced as the products were."""

    order_id: str
    lines: tuple[ReservedLine, ...]


@event("inventory.rejected")
@dataclass(frozen=True, slots=True)
class InventoryRejected:
    """Nothing of the order is reserved: at least one item is short."""

    order_id: str
    shortages: tuple[Shortage, ...]


@event("inventory.released")
@dataclass(frozen=True, slots=True)
class InventoryReleased:
    """The order's reservation was given back (the order was cancelled)."""

    order_id: str
    lines: tuple[StockLine, ...]


@event("inventory.committed")
@dataclass(frozen=True, slots=True)
class InventoryCommitted:
    """The order shipped: its reserved units left ``on_hand`` and ``reserved``."""

    order_id: str
    lines: tuple[StockLine, ...]


# ---------------------------------------------------------------- the orders' events, as read here


@dataclass(frozen=True, slots=True)
class OrderItemView:
    """One item of a placed order: ``quantity`` units of a product."""

    product_id: uuid.UUID
    quantity: int


@event_view("order.placed")
@dataclass(frozen=True, slots=True)
class OrderPlacedView:
    """An order was placed: reserve its items (``inventory.reserved`` or ``rejected``)."""

    order_id: str
    items: tuple[OrderItemView, ...]


@event_view("order.cancelled")
@dataclass(frozen=True, slots=True)
class OrderCancelledView:
    """An order was cancelled: release what it holds (``inventory.released``)."""

    order_id: str


@event_view("order.release_requested")
@dataclass(frozen=True, slots=True)
class OrderReleaseView:
    """A cancelled order got a reservation late: release it (``inventory.released``)."""

    order_id: str


@event_view("order.shipped")
@dataclass(frozen=True, slots=True)
class OrderShippedView:
    """An order shipped: its reserved units leave the stock (``inventory.committed``)."""

    order_id: str
