"""``/app/modules/orders/payments``: where the payment gateway's breaker lives in the tree.

The order entities call :class:`~._payments.Payments` directly (a provider
call is part of their command); this actor gives the gateway its place in
the supervision tree, so operators see the ``payments`` breaker (its state,
failure rate, calls) in ``system.tree()``, ``triotok tree`` and ``/system``.
"""

from __future__ import annotations

from typing import Any

from ..._exceptions import UnknownMessage
from ...actors import Actor
from ._payments import Payments

__all__ = ("PaymentGateway",)


class PaymentGateway(Actor):
    """Registers the gateway's breaker as the ``payments`` component of this actor, and
    closes the providers' connections when it stops."""

    def __init__(self, payments: Payments) -> None:
        self._payments = payments

    async def on_start(self) -> None:
        self.ctx.register("payments", self._payments.breaker)

    async def on_stop(self) -> None:
        # The http provider keeps connections alive: close them with the module.
        await self._payments.aclose()

    async def receive(self, message: Any) -> None:
        raise UnknownMessage(self.ctx.path, message, ())
