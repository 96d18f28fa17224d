"""The orders module: orders as entity actors, their typed lifecycle, the saga, payments.

Declared as :data:`ORDERS`: the ``orders_*`` table, ``/api/orders``, the
``orders:*`` permissions, and the subtree ``/app/modules/orders``::

    /app/modules/orders
      /app/modules/orders/payments   the payment gateway (its "payments" breaker)
      /app/modules/orders/orders     entities region: one actor per (tenant_id, order_id)
      /app/modules/orders/on-1       inventory.reserved -> confirm (priced)
      /app/modules/orders/on-2       inventory.rejected -> cancel (insufficient_stock)

The lifecycle (:mod:`~triotok.modules.orders._lifecycle`) is a typed state
machine: each state its own type, each transition a function typed on its
source state, so mypy rejects ``ship(pending_order, ...)``::

    pending -> confirmed -> paid -> shipped -> delivered
    pending, confirmed, paid (refunded first) -> cancelled

The saga runs over events only (modules never import each other): placing an
order writes it ``pending`` with ``order.placed`` (the outbox); commerce
reserves and prices the stock and answers ``inventory.reserved`` or
``inventory.rejected``; the order entity moves to ``confirmed`` or
``cancelled``. ``order.cancelled`` releases the stock, ``order.shipped``
commits it. Every step is at least once with an inbox, so a crash anywhere
resumes from the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec, Entities
from .._context import ModuleContext
from .._module import Grant, Module, Subscription
from .._permissions import Permission
from ._entity import CONSUMER as CONSUMER
from ._entity import AnswerReservation as AnswerReservation
from ._entity import CancelOrder as CancelOrder
from ._entity import DeliverOrder as DeliverOrder
from ._entity import GetOrder as GetOrder
from ._entity import OrderEntity as OrderEntity
from ._entity import OrderExists as OrderExists
from ._entity import PayOrder as PayOrder
from ._entity import PlaceOrder as PlaceOrder
from ._entity import ShipOrder as ShipOrder
from ._entity import VersionMismatch as VersionMismatch
from ._gateway import PaymentGateway as PaymentGateway
from ._lifecycle import TRANSITIONS as TRANSITIONS
from ._lifecycle import Cancelled as Cancelled
from ._lifecycle import Change as Change
from ._lifecycle import Command as Command
from ._lifecycle import Confirmed as Confirmed
from ._lifecycle import Delivered as Delivered
from ._lifecycle import InvalidTransition as InvalidTransition
from ._lifecycle import Item as Item
from ._lifecycle import Line as Line
from ._lifecycle import Order as Order
from ._lifecycle import Paid as Paid
from ._lifecycle import Payment as Payment
from ._lifecycle import Pending as Pending
from ._lifecycle import Pricing as Pricing
from ._lifecycle import Shipped as Shipped
from ._lifecycle import State as State
from ._lifecycle import Status as Status
from ._lifecycle import allowed as allowed
from ._lifecycle import cancel as cancel
from ._lifecycle import confirm as confirm
from ._lifecycle import deliver as deliver
from ._lifecycle import expect as expect
from ._lifecycle import pay as pay
from ._lifecycle import place as place
from ._lifecycle import refund as refund
from ._lifecycle import ship as ship
from ._model import check_items as check_items
from ._model import new_order_id as new_order_id
from ._payments import Charge as Charge
from ._payments import HttpProvider as HttpProvider
from ._payments import ManualProvider as ManualProvider
from ._payments import PaymentDeclined as PaymentDeclined
from ._payments import PaymentError as PaymentError
from ._payments import PaymentProvider as PaymentProvider
from ._payments import Payments as Payments
from ._payments import ProviderUnavailable as ProviderUnavailable
from ._payments import Refund as Refund
from ._repository import OrderRepository as OrderRepository
from ._repository import StaleOrder as StaleOrder
from ._saga import REJECTED, RESERVED, answers
from ._schema import SCHEMA
from ._service import REGION_PATH as REGION_PATH
from ._service import OrderService as OrderService

__all__ = (
    "CONSUMER",
    "ORDERS",
    "REGION_PATH",
    "TRANSITIONS",
    "AnswerReservation",
    "CancelOrder",
    "Cancelled",
    "Change",
    "Charge",
    "Command",
    "Confirmed",
    "DeliverOrder",
    "Delivered",
    "GetOrder",
    "HttpProvider",
    "InvalidTransition",
    "Item",
    "Line",
    "ManualProvider",
    "Order",
    "OrderEntity",
    "OrderExists",
    "OrderRepository",
    "OrderService",
    "Paid",
    "PayOrder",
    "Payment",
    "PaymentDeclined",
    "PaymentError",
    "PaymentGateway",
    "PaymentProvider",
    "Payments",
    "Pending",
    "PlaceOrder",
    "Pricing",
    "ProviderUnavailable",
    "Refund",
    "ShipOrder",
    "Shipped",
    "StaleOrder",
    "State",
    "Status",
    "VersionMismatch",
    "allowed",
    "cancel",
    "check_items",
    "confirm",
    "deliver",
    "expect",
    "new_order_id",
    "pay",
    "place",
    "refund",
    "ship",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    payments = Payments.from_settings(ctx.settings)
    ctx.provide(OrderService(ctx.system, ctx.store, OrderRepository(), payments))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    service = ctx.get(OrderService)

    def entity(key: tuple[str, str]) -> OrderEntity:
        return OrderEntity(key, ctx.store, service.repository, service.payments, service.moved)

    region = Entities(
        "orders",
        factory=entity,
        idle=float(ctx.settings.get("idle", 120.0)),
        max_active=int(ctx.settings.get("max_active", 10_000)),
    )
    return [
        ChildSpec("payments", PaymentGateway, (service.payments,)),
        ChildSpec("orders", region, shutdown=None),
    ]


def _o(action: str) -> Permission:
    return Permission("orders", action)


#: The orders module's declaration.
ORDERS = Module(
    name="orders",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(_o("read"), ("viewer", "editor", "admin")),
        Grant(_o("read"), ("storefront",), restricted=True),  # only the orders its key placed
        Grant(_o("create"), ("storefront", "editor", "admin")),
        Grant(_o("update"), ("editor", "admin")),
        Grant(_o("admin"), ("admin",)),
    ),
    routes=_routes,
    actors=_actors,
    subscriptions=(Subscription(RESERVED, answers), Subscription(REJECTED, answers)),
    setup=_setup,
    description="orders: one entity actor per order, the stock saga, payments behind a breaker",
)

fixup_module_metadata(__name__, globals())
