"""The orders module's events, and its views of the commerce events that answer them.

Every event of one order correlates with the order: its correlation id is
the order id (a UUID), so the whole saga (``order.placed``, commerce's
answer, the transitions after it) shares one ordering key on the bus and
one conversation in traces. Each event names its order (``order_id``).

``order.release_requested`` is the saga's compensation: a reservation that
reaches an order already cancelled (only when events overtake each other,
across nodes or after a dead letter's replay) is handed back, so no stock
stays reserved for a cancelled order.

Commerce's answers are read through views (:func:`~triotok.transport.event_view`):
commerce owns ``inventory.*``, and modules never import each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ...transport import event, event_view

__all__ = (
    "OrderCancelled",
    "OrderConfirmed",
    "OrderDelivered",
    "OrderItem",
    "OrderLine",
    "OrderPaid",
    "OrderPlaced",
    "OrderReleaseRequested",
    "OrderShipped",
    "ReservedStock",
    "StockRejected",
    "StockReserved",
    "StockShortage",
)


# Event payload types stay out of the package's public names: the schema
# registry resolves their annotations in the module that defines them, which
# ``fixup_module_metadata`` would rename.
@dataclass(frozen=True, slots=True)
class OrderItem:
    """``quantity`` units of a product, as ordered."""

    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    """An item priced when its stock was reserved."""

    product_id: uuid.UUID
    quantity: int
    unit_price: int
    currency: str


@event("order.placed")
@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """An order was placed (``pending``): commerce reserves its items."""

    order_id: str
    items: tuple[OrderItem, ...]
    placed_by: str


@event("order.confirmed")
@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    """The order's stock is reserved; it is priced and can be paid."""

    order_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    total: int


@event("order.paid")
@dataclass(frozen=True, slots=True)
class OrderPaid:
    """The order was charged once (``charge_id``: the provider's)."""

    order_id: str
    charge_id: str
    provider: str
    amount: int
    currency: str


@event("order.shipped")
@dataclass(frozen=True, slots=True)
class OrderShipped:
    """The order left the warehouse: commerce commits its reservation."""

    order_id: str
    tracking_number: str


@event("order.delivered")
@dataclass(frozen=True, slots=True)
class OrderDelivered:
    """The order arrived."""

    order_id: str


@event("order.cancelled")
@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """The order was cancelled: commerce releases what it holds.

    ``reason``: ``insufficient_stock``, ``product_unavailable``,
    ``mixed_currencies``, ``total_out_of_range`` (the saga's) or the
    client's; ``refund_id`` when a paid order was refunded first.
    """

    order_id: str
    reason: str
    refund_id: str | None


@event("order.release_requested")
@dataclass(frozen=True, slots=True)
class OrderReleaseRequested:
    """A reservation reached the order after it was cancelled: release it."""

    order_id: str


# ---------------------------------------------------------------- commerce's answers, as read here


@dataclass(frozen=True, slots=True)
class ReservedStock:
    """One product's reserved units and its price when they were reserved."""

    product_id: uuid.UUID
    quantity: int
    unit_price: int
    currency: str


@event_view("inventory.reserved")
@dataclass(frozen=True, slots=True)
class StockReserved:
    """Every item of the order is reserved, and priced."""

    order_id: str
    lines: tuple[ReservedStock, ...]


@dataclass(frozen=True, slots=True)
class StockShortage:
    """Why one item could not be reserved (``insufficient_stock`` or ``unavailable``)."""

    product_id: uuid.UUID
    requested: int
    available: int
    reason: str


@event_view("inventory.rejected")
@dataclass(frozen=True, slots=True)
class StockRejected:
    """Nothing of the order is reserved."""

    order_id: str
    shortages: tuple[StockShortage, ...]
