"""An order's lifecycle as types: each state its own class, each transition typed on its source.

A sans-I/O state machine (no trio, no store). :class:`Order` is generic in
its state, and the transitions are plain functions whose parameter type is
the only state they accept, so mypy rejects an illegal transition before it
runs::

    def ship(order: Order[Paid], tracking_number: str, *, at: datetime) -> Order[Shipped]

    ship(pending_order, "TRACK-1", at=now)   # mypy: incompatible type "Order[Pending]"

Invariants:

* The lifecycle is exactly :data:`TRANSITIONS`::

      pending ──confirm──▶ confirmed ──pay──▶ paid ──ship──▶ shipped ──deliver──▶ delivered
         │                    │                │
         └──cancel──▶ cancelled ◀──cancel──────┘ (refund first)

  ``confirm`` and the ``cancel`` of a pending order are the saga's (stock
  reserved, or refused); a paid order is cancelled only by :func:`refund`,
  which needs the provider's refund id, so a paid order cannot be cancelled
  without its refund by construction.
* Each state carries what exists from it on, and nothing optional: a
  :class:`Confirmed` order has its :class:`Pricing` (lines, currency, total),
  a :class:`Paid` one its :class:`Payment` too, a :class:`Shipped` one its
  tracking number. A :class:`Cancelled` order keeps what it had.
* Every transition appends one :class:`Change` (status, time, reason) to the
  history and advances ``version`` by one; it never half-applies.
* At run time a command meets an order whose state is only known as
  ``Order[Any]``: :func:`expect` narrows it to the source state or raises
  :class:`InvalidTransition` (409 ``invalid_transition``), naming the
  current state and the commands it allows.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from ..._exceptions import Conflict

__all__ = (
    "TRANSITIONS",
    "Cancelled",
    "Change",
    "Command",
    "Confirmed",
    "Delivered",
    "InvalidTransition",
    "Item",
    "Line",
    "Order",
    "Paid",
    "Payment",
    "Pending",
    "Pricing",
    "Shipped",
    "State",
    "Status",
    "allowed",
    "cancel",
    "confirm",
    "deliver",
    "expect",
    "pay",
    "place",
    "refund",
    "ship",
)


class Status(enum.StrEnum):
    """Where an order is in its lifecycle."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Command(enum.StrEnum):
    """A lifecycle command (``confirm`` is the saga's; the others come from clients too)."""

    CONFIRM = "confirm"
    PAY = "pay"
    SHIP = "ship"
    DELIVER = "deliver"
    CANCEL = "cancel"


#: ``(state, command) -> next state``: everything the lifecycle allows.
TRANSITIONS: Mapping[tuple[Status, Command], Status] = {
    (Status.PENDING, Command.CONFIRM): Status.CONFIRMED,
    (Status.CONFIRMED, Command.PAY): Status.PAID,
    (Status.PAID, Command.SHIP): Status.SHIPPED,
    (Status.SHIPPED, Command.DELIVER): Status.DELIVERED,
    (Status.PENDING, Command.CANCEL): Status.CANCELLED,
    (Status.CONFIRMED, Command.CANCEL): Status.CANCELLED,
    (Status.PAID, Command.CANCEL): Status.CANCELLED,
}


class InvalidTransition(Conflict):
    """The command is not allowed in the order's current state (names the allowed ones)."""

    code = "invalid_transition"

    def __init__(self, current: Status, command: Command) -> None:
        self.current = current
        self.command = command
        self.allowed = allowed(current)
        names = ", ".join(c.value for c in self.allowed) or "none"
        super().__init__(
            f"cannot {command.value} a {current.value} order (allowed: {names})",
            current=current.value,
            command=command.value,
            allowed=[c.value for c in self.allowed],
        )


def allowed(current: Status) -> tuple[Command, ...]:
    """The commands ``current`` accepts, in declaration order."""
    return tuple(c for c in Command if (current, c) in TRANSITIONS)


# ---------------------------------------------------------------- what an order holds


@dataclass(frozen=True, slots=True)
class Item:
    """``quantity`` units of a product, as ordered (product ids are canonical UUIDs)."""

    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Line:
    """An item priced when its stock was reserved (``unit_price`` in minor units)."""

    product_id: str
    quantity: int
    unit_price: int
    currency: str

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Pricing:
    """An order's priced lines, in one currency, and their total."""

    lines: tuple[Line, ...]
    currency: str
    total: int


@dataclass(frozen=True, slots=True)
class Payment:
    """The charge that paid an order (recorded with the ``paid`` transition)."""

    charge_id: str
    provider: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of an order's history: the status it entered, when, and why."""

    status: Status
    at: datetime
    reason: str | None = None


# ---------------------------------------------------------------- the states


class State:
    """The base of the state types; ``status`` names the state."""

    __slots__ = ()
    status: ClassVar[Status]


@dataclass(frozen=True, slots=True)
class Pending(State):
    """Placed; its stock is being reserved (no prices yet)."""

    status: ClassVar[Status] = Status.PENDING


@dataclass(frozen=True, slots=True)
class Confirmed(State):
    """Its stock is reserved and it is priced: it can be paid."""

    pricing: Pricing
    status: ClassVar[Status] = Status.CONFIRMED


@dataclass(frozen=True, slots=True)
class Paid(State):
    """Charged once: it can ship, or be refunded and cancelled."""

    pricing: Pricing
    payment: Payment
    status: ClassVar[Status] = Status.PAID


@dataclass(frozen=True, slots=True)
class Shipped(State):
    """On its way: its reserved stock has left the warehouse."""

    pricing: Pricing
    payment: Payment
    tracking_number: str
    status: ClassVar[Status] = Status.SHIPPED


@dataclass(frozen=True, slots=True)
class Delivered(State):
    """Arrived (final)."""

    pricing: Pricing
    payment: Payment
    tracking_number: str
    status: ClassVar[Status] = Status.DELIVERED


@dataclass(frozen=True, slots=True)
class Cancelled(State):
    """Cancelled (final): ``reason``, and what it had (a refunded payment's refund id)."""

    reason: str
    pricing: Pricing | None = None
    payment: Payment | None = None
    refund_id: str | None = None
    status: ClassVar[Status] = Status.CANCELLED


S = TypeVar("S", bound=State)
T = TypeVar("T", bound=State)


@dataclass(frozen=True, slots=True)
class Order(Generic[S]):
    """An order in state ``S``; ``version`` grows by one with every transition."""

    tenant_id: str
    id: str
    items: tuple[Item, ...]
    #: The API key that placed it (``key:<id>``), or ``system``.
    placed_by: str
    state: S
    history: tuple[Change, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @property
    def status(self) -> Status:
        return self.state.status

    @property
    def etag(self) -> str:
        """The strong entity tag of this version (what ``If-Match`` compares)."""
        return f'"{self.version}"'


# ---------------------------------------------------------------- the transitions


def _advance(order: Order[Any], state: T, at: datetime, reason: str | None = None) -> Order[T]:
    return Order(
        tenant_id=order.tenant_id,
        id=order.id,
        items=order.items,
        placed_by=order.placed_by,
        state=state,
        history=(*order.history, Change(state.status, at, reason)),
        created_at=order.created_at,
        updated_at=at,
        version=order.version + 1,
    )


def place(
    *, tenant_id: str, order_id: str, items: tuple[Item, ...], placed_by: str, at: datetime
) -> Order[Pending]:
    """A new order, ``pending`` at version 1."""
    return Order(
        tenant_id=tenant_id,
        id=order_id,
        items=items,
        placed_by=placed_by,
        state=Pending(),
        history=(Change(Status.PENDING, at),),
        created_at=at,
        updated_at=at,
    )


def confirm(order: Order[Pending], pricing: Pricing, *, at: datetime) -> Order[Confirmed]:
    """Its stock is reserved: priced and ``confirmed``."""
    return _advance(order, Confirmed(pricing), at, "stock_reserved")


def pay(order: Order[Confirmed], payment: Payment, *, at: datetime) -> Order[Paid]:
    """Charged: ``paid``, with the charge."""
    return _advance(order, Paid(order.state.pricing, payment), at)


def ship(order: Order[Paid], tracking_number: str, *, at: datetime) -> Order[Shipped]:
    """Handed to the carrier: ``shipped``."""
    state = Shipped(order.state.pricing, order.state.payment, tracking_number)
    return _advance(order, state, at)


def deliver(order: Order[Shipped], *, at: datetime) -> Order[Delivered]:
    """Arrived: ``delivered``."""
    state = order.state
    return _advance(order, Delivered(state.pricing, state.payment, state.tracking_number), at)


def cancel(
    order: Order[Pending] | Order[Confirmed], reason: str, *, at: datetime
) -> Order[Cancelled]:
    """``cancelled`` before any payment (a refused reservation, or the customer)."""
    state = order.state
    pricing = state.pricing if isinstance(state, Confirmed) else None
    return _advance(order, Cancelled(reason, pricing), at, reason)


def refund(order: Order[Paid], refund_id: str, reason: str, *, at: datetime) -> Order[Cancelled]:
    """A paid order, refunded (``refund_id``: the provider's), is ``cancelled``."""
    state = order.state
    cancelled = Cancelled(reason, state.pricing, state.payment, refund_id)
    return _advance(order, cancelled, at, reason)


def expect(order: Order[Any], state: type[S], command: Command) -> Order[S]:
    """``order`` as an ``Order[state]``, or :class:`InvalidTransition` for ``command``."""
    if not isinstance(order.state, state):
        raise InvalidTransition(order.status, command)
    return cast("Order[S]", order)
