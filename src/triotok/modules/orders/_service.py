"""What the orders routes and the saga use: the entity region, lists, and waiting for a saga.

:meth:`OrderService.wait_settled` is how a client (``Prefer: wait``), a
benchmark or a test waits for an order to leave ``pending`` (commerce
answered): the entities of this node wake it on every transition, and it
re-reads the order at least every :data:`POLL` seconds, for a saga step
handled on another node.
"""

from __future__ import annotations

from typing import Any

import trio

from ...store import Store, StoreHandle
from ...supervision import ActorSystem, EntitiesRef
from ._entity import GetOrder
from ._lifecycle import Order, Status
from ._payments import Payments
from ._repository import OrderPage, OrderRepository

__all__ = ("ASK_TIMEOUT", "POLL", "REGION_PATH", "OrderService")

#: Where the order entities live.
REGION_PATH = "/app/modules/orders/orders"

#: How long a request waits for its order's entity (activation, the command and a
#: payment provider's answer, which the gateway bounds by its own timeout).
ASK_TIMEOUT = 30.0

#: Seconds between two reads of an order that :meth:`OrderService.wait_settled` waits for.
POLL = 0.25


class OrderService:
    """The module's services, provided to its routes and subscriptions through the context."""

    def __init__(
        self,
        system: ActorSystem,
        store: StoreHandle,
        repository: OrderRepository,
        payments: Payments,
    ) -> None:
        self._system = system
        self._store = store
        self.repository = repository
        self.payments = payments
        self._waiters: dict[tuple[str, str], trio.Event] = {}

    @property
    def store(self) -> Store:
        return self._store.store

    def _region(self) -> EntitiesRef:
        region = self._system.ref(REGION_PATH)
        assert isinstance(region, EntitiesRef)  # the module's spec starts a region there
        return region

    async def ask(self, tenant_id: str, order_id: str, command: Any) -> Order[Any]:
        """Hand ``command`` to the order's entity (activated if needed); its reply or error."""
        reply: Order[Any] = await self._region().ask(
            (tenant_id, order_id), command, timeout=ASK_TIMEOUT
        )
        return reply

    async def passivate(self, tenant_id: str, order_id: str) -> None:
        """Passivate the order's entity if it is active (its state stays in the store)."""
        await self._region().passivate((tenant_id, order_id))

    async def list(self, tenant_id: str, **filters: Any) -> OrderPage:
        return await self.repository.list(self._store.store, tenant_id, **filters)

    def moved(self, tenant_id: str, order_id: str) -> None:
        """An entity of this node moved the order: wake whoever waits for it."""
        waiter = self._waiters.pop((tenant_id, order_id), None)
        if waiter is not None:
            waiter.set()

    async def wait_settled(self, tenant_id: str, order_id: str, *, timeout: float) -> Order[Any]:  # noqa: ASYNC109  # a deadline for the saga, not for this call
        """The order once it is no longer ``pending``, or as it is after ``timeout`` seconds."""
        deadline = trio.current_time() + timeout
        key = (tenant_id, order_id)
        while True:
            # Registered before reading: a transition between the read and the
            # wait still wakes this waiter.
            waiter = self._waiters.setdefault(key, trio.Event())
            order = await self.ask(tenant_id, order_id, GetOrder())
            now = trio.current_time()
            if order.status is not Status.PENDING or now >= deadline:
                return order
            with trio.move_on_at(min(deadline, now + POLL)):
                await waiter.wait()
