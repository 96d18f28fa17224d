"""Commerce's part of the orders saga: the order events it answers with stock movements.

The orders module owns ``order.*``; commerce reads the few fields it needs
through its views (``_events.py``) and calls :class:`Inventory`:

====================================  =========================================
``order.placed``                      reserve every item or none
                                      (``inventory.reserved`` | ``rejected``)
``order.cancelled``,                  release what the order holds
``order.release_requested``           (``inventory.released``)
``order.shipped``                     commit: the units leave ``on_hand``
                                      (``inventory.committed``)
====================================  =========================================

Every call is one unit of work with its inbox entry and its answer, so a
redelivered event changes nothing (at least once in, effectively once out).
Other order events are not commerce's business and are acknowledged as is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ...transport import Envelope, view_of
from .._context import ModuleContext
from ._events import OrderCancelledView, OrderPlacedView, OrderReleaseView, OrderShippedView
from ._inventory import Item
from ._service import ProductService

__all__ = ("ORDER_EVENTS", "order_events")

#: The pattern of the commerce module's subscription.
ORDER_EVENTS = "order.*"


def order_events(ctx: ModuleContext) -> Callable[[Envelope], Awaitable[None]]:
    """The handler of ``order.*`` (built once the module's services exist)."""
    service = ctx.get(ProductService)
    inventory = service.inventory

    async def handle(envelope: Envelope) -> None:
        store = ctx.store.store
        kind = envelope.event_type
        if kind == "order.placed":
            placed = view_of(envelope, OrderPlacedView)
            items = [Item(str(i.product_id), i.quantity) for i in placed.items]
            await inventory.reserve(store, envelope, placed.order_id, items)
        elif kind == "order.cancelled":
            cancelled = view_of(envelope, OrderCancelledView)
            await inventory.release(store, envelope, cancelled.order_id)
        elif kind == "order.release_requested":
            released = view_of(envelope, OrderReleaseView)
            await inventory.release(store, envelope, released.order_id)
        elif kind == "order.shipped":
            shipped = view_of(envelope, OrderShippedView)
            await inventory.commit(store, envelope, shipped.order_id)

    return handle
