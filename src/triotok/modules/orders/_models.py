"""The orders module's HTTP models: what ``/api/orders`` reads and answers.

msgspec Structs, declared once: the HTTP layer validates request bodies and
queries with them, and ``/openapi.json`` publishes them as the components
``Order``, ``OrderPage``, ``OrderCreate``, ``OrderShipment``,
``OrderCancellation`` and ``OrderQuery``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from ..._text import NAME_PATTERN, whole_match
from ._model import MAX_ITEMS, MAX_QUANTITY, TRACKING_PATTERN

__all__ = (
    "Order",
    "OrderCancellation",
    "OrderCreate",
    "OrderPage",
    "OrderQuery",
    "OrderShipment",
)

Uuid = Annotated[
    str,
    Meta(
        pattern="^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        extra_json_schema={"format": "uuid"},
        examples=["6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70"],
    ),
]
Status = Literal["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]

_ID = "01900000-0000-7000-8000-00000000a1b2"
_PRODUCT = "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70"
_ORDER: dict[str, Any] = {
    "id": _ID,
    "status": "paid",
    "items": [{"product_id": _PRODUCT, "quantity": 2}],
    "lines": [
        {
            "product_id": _PRODUCT,
            "quantity": 2,
            "unit_price": 1290,
            "currency": "EUR",
            "subtotal": 2580,
        }
    ],
    "currency": "EUR",
    "total": 2580,
    "placed_by": "key:0123456789abcdef",
    "payment": {
        "charge_id": f"manual-{_ID}",
        "provider": "manual",
        "amount": 2580,
        "currency": "EUR",
    },
    "tracking_number": None,
    "cancel_reason": None,
    "refund_id": None,
    "history": [
        {"status": "pending", "at": "2024-05-01T12:00:00+00:00", "reason": None},
        {
            "status": "confirmed",
            "at": "2024-05-01T12:00:00.020000+00:00",
            "reason": "stock_reserved",
        },
        {"status": "paid", "at": "2024-05-01T12:01:10+00:00", "reason": None},
    ],
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:01:10+00:00",
    "version": 3,
}


class OrderItem(Struct, frozen=True, forbid_unknown_fields=True):
    """``quantity`` units of a product."""

    product_id: Uuid
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]


class OrderLine(Struct, frozen=True):
    """An item priced when its stock was reserved (minor units)."""

    product_id: str
    quantity: int
    unit_price: int
    currency: str
    subtotal: int


class OrderPayment(Struct, frozen=True):
    """The charge that paid the order."""

    charge_id: str
    provider: str
    amount: int
    currency: str


class OrderChange(Struct, frozen=True):
    """One step of the order's history."""

    status: Status
    at: datetime
    reason: str | None


class Order(Struct, frozen=True):
    """An order; ``version`` is its ``ETag``. Prices exist once it is confirmed."""

    id: str
    status: Status
    items: list[OrderItem]
    lines: list[OrderLine] | None
    currency: str | None
    total: int | None
    placed_by: str
    payment: OrderPayment | None
    tracking_number: str | None
    cancel_reason: str | None
    refund_id: str | None
    history: list[OrderChange]
    created_at: datetime
    updated_at: datetime
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _ORDER


class OrderPage(Struct, frozen=True):
    """A page of orders, newest first; ``next_cursor`` continues it (``null``: the last page)."""

    items: list[Order]
    next_cursor: str | None

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [_ORDER], "next_cursor": None}


class OrderCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A new order: its items (one line per product; repeated products are summed)."""

    items: Annotated[list[OrderItem], Meta(min_length=1, max_length=MAX_ITEMS)]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [{"product_id": _PRODUCT, "quantity": 2}]}


class OrderShipment(Struct, frozen=True, forbid_unknown_fields=True):
    """Shipping a paid order: the carrier's tracking number."""

    tracking_number: Annotated[str, Meta(pattern=whole_match(TRACKING_PATTERN))]

    EXAMPLE: ClassVar[dict[str, Any]] = {"tracking_number": "1Z999AA10123456784"}


class OrderCancellation(Struct, frozen=True, forbid_unknown_fields=True):
    """Cancelling an order (a paid one is refunded first); ``reason`` goes into its history."""

    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)] = "requested"

    EXAMPLE: ClassVar[dict[str, Any]] = {"reason": "customer changed their mind"}


class OrderQuery(Struct, frozen=True):
    """``GET /api/orders``: a status filter and keyset pagination (``cursor`` is opaque)."""

    status: Status | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 50
    cursor: Annotated[str, Meta(pattern="^[0-9a-f]{32}$")] | None = None
