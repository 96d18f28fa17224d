"""The orders module's part of the saga: commerce's answers, handed to the order entities.

``inventory.reserved`` confirms (prices) a pending order, ``inventory.rejected``
cancels it (``insufficient_stock`` or ``product_unavailable``). The entity
applies each answer at most once (its inbox entry commits with the
transition); a handler that fails (the entity's region restarting, an ask
timing out) raises, and the bus delivers the event again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..._exceptions import PermanentError
from ...transport import Envelope, view_of
from .._context import ModuleContext
from ._entity import AnswerReservation
from ._events import StockRejected, StockReserved
from ._service import OrderService

__all__ = ("REJECTED", "RESERVED", "answers")

RESERVED = "inventory.reserved"
REJECTED = "inventory.rejected"


def answers(ctx: ModuleContext) -> Callable[[Envelope], Awaitable[None]]:
    """The handler of commerce's reservation answers."""
    service = ctx.get(OrderService)

    async def handle(envelope: Envelope) -> None:
        if envelope.event_type == RESERVED:
            order_id = view_of(envelope, StockReserved).order_id
        else:
            order_id = view_of(envelope, StockRejected).order_id
        if envelope.tenant_id is None:
            raise PermanentError(f"{envelope.event_type} {envelope.id} names no tenant")
        await service.ask(envelope.tenant_id, order_id, AnswerReservation(envelope))

    return handle
