"""Orders: their validation rules, ids, pricing from a reservation, and their JSON shape.

An order's items are merged to one per product (quantities summed) and
sorted by product id, so an order has one canonical form whatever its
request looked like. Ids are time-ordered UUIDs (48 bits of milliseconds,
then random bits, in the layout of UUID version 7): listing by id lists
newest first without another index.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ..._exceptions import InvalidInput
from ..._text import NAME_PATTERN
from ._events import ReservedStock
from ._lifecycle import (
    Cancelled,
    Delivered,
    Item,
    Line,
    Order,
    Payment,
    Pricing,
    Shipped,
)

__all__ = (
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "MAX_TOTAL",
    "TRACKING_PATTERN",
    "as_dict",
    "check_items",
    "check_reason",
    "check_tracking_number",
    "new_order_id",
    "parse_order_id",
    "price",
)

#: Distinct products per order (commerce reserves at most as many).
MAX_ITEMS = 100
#: Units of one product per order.
MAX_QUANTITY = 10_000
#: The largest total an order may have (minor units; exact in every JSON client).
MAX_TOTAL = 2**53 - 1
#: Carriers' tracking numbers: letters, digits and `` ._/-``.
TRACKING_PATTERN = r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,99}"

_TRACKING = re.compile(TRACKING_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def new_order_id() -> str:
    """A fresh time-ordered order id (UUID version 7 layout)."""
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def parse_order_id(value: str) -> str:
    """The canonical form of an order id (a UUID), or :class:`InvalidInput`."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput(f"{value[:60]!r} is not an order id (a UUID)", field="id") from None


def _product_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        shown = value[:60]
        raise InvalidInput(f"{shown!r} is not a product id (a UUID)", field="product_id") from None


def check_items(items: Iterable[tuple[str, int]]) -> tuple[Item, ...]:
    """``(product_id, quantity)`` pairs as an order's items: merged, sorted, in range."""
    totals: dict[str, int] = {}
    for product_id, quantity in items:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidInput("an item's quantity is an integer >= 1", field="quantity")
        key = _product_id(product_id)
        totals[key] = totals.get(key, 0) + quantity
    if not totals:
        raise InvalidInput("an order has at least one item", field="items")
    if len(totals) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} products per order", field="items")
    if any(q > MAX_QUANTITY for q in totals.values()):
        raise InvalidInput(f"at most {MAX_QUANTITY} units of a product", field="quantity")
    return tuple(Item(p, totals[p]) for p in sorted(totals))


def check_tracking_number(value: str) -> str:
    if not _TRACKING.fullmatch(value):
        raise InvalidInput(
            f"a tracking number is 1-100 letters, digits or ' ._/-' ({TRACKING_PATTERN})",
            field="tracking_number",
        )
    return value


def check_reason(value: str) -> str:
    if not 1 <= len(value) <= 200 or not _NAME.fullmatch(value):
        raise InvalidInput(
            "a reason is 1-200 characters without control or format characters", field="reason"
        )
    return value


def price(items: tuple[Item, ...], reserved: Iterable[ReservedStock]) -> Pricing | str:
    """The pricing of ``items`` from commerce's reservation, or why it cannot be priced.

    The reason (``mixed_currencies``, ``total_out_of_range``, or
    ``reservation_mismatch`` when the reservation does not hold exactly the
    order's items) cancels the order.
    """
    by_product = {str(line.product_id): line for line in reserved}
    if sorted(by_product) != [i.product_id for i in items] or any(
        by_product[i.product_id].quantity != i.quantity for i in items
    ):
        return "reservation_mismatch"
    lines = tuple(
        Line(
            i.product_id,
            i.quantity,
            by_product[i.product_id].unit_price,
            by_product[i.product_id].currency,
        )
        for i in items
    )
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        return "mixed_currencies"
    total = sum(line.subtotal for line in lines)
    if total > MAX_TOTAL:
        return "total_out_of_range"
    [currency] = currencies
    return Pricing(lines, currency, total)


def as_dict(order: Order[Any]) -> dict[str, Any]:
    """The JSON shape of an order (what ``/api/orders`` answers)."""
    state = order.state
    pricing: Pricing | None = getattr(state, "pricing", None)
    payment: Payment | None = getattr(state, "payment", None)
    tracking = state.tracking_number if isinstance(state, Shipped | Delivered) else None
    return {
        "id": order.id,
        "status": order.status.value,
        "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in order.items],
        "lines": None
        if pricing is None
        else [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "currency": line.currency,
                "subtotal": line.subtotal,
            }
            for line in pricing.lines
        ],
        "currency": None if pricing is None else pricing.currency,
        "total": None if pricing is None else pricing.total,
        "placed_by": order.placed_by,
        "payment": None
        if payment is None
        else {
            "charge_id": payment.charge_id,
            "provider": payment.provider,
            "amount": payment.amount,
            "currency": payment.currency,
        },
        "tracking_number": tracking,
        "cancel_reason": state.reason if isinstance(state, Cancelled) else None,
        "refund_id": state.refund_id if isinstance(state, Cancelled) else None,
        "history": [
            {"status": c.status.value, "at": c.at.isoformat(), "reason": c.reason}
            for c in order.history
        ],
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "version": order.version,
    }
