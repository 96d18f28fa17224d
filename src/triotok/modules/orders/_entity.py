"""The order entity: one actor per ``(tenant_id, order_id)``, its commands and saga steps in order.

Invariants:

* The entity's state is the stored row as of its last load or write
  (``on_start`` loads it; a region restart or a stale write reloads it).
  Other nodes may write the row (a saga step handled there), so ``GetOrder``
  and every command that calls the payment provider read it afresh first.
* Every accepted command and every saga step that moves the order writes the
  row, exactly one event and one audit entry in one unit of work, then
  replaces the state; a refused command writes nothing. Writes are guarded
  by ``version`` (:class:`~._repository.StaleOrder`: the region reloads the
  state and retries once).
* Commerce's answers (``inventory.reserved|rejected``) are applied at most
  once: the inbox entry ``(orders-saga, event id)`` commits with their
  effect. An answer for an order that is no longer pending changes nothing,
  except a reservation reaching a cancelled order, which the entity hands
  back (``order.release_requested``) so no stock stays held for it.
* A payment is charged at most once per order: the provider call carries
  the idempotency key ``<order id>:charge`` (a retry after a crash gets the
  same charge back), and the charge id is recorded with the ``paid``
  transition and ``order.paid``. A paid order is refunded (``<order
  id>:refund``) before it is cancelled. A declined or unavailable provider
  leaves the order as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import Conflict, DomainError, NotFound, PreconditionFailed
from ...actors import Actor, Failure
from ...store import StoreHandle, UnitOfWork
from ...transport import Envelope, view_of
from .._audit import AuditEntry, record
from .._commands import Who
from ._events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderItem,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderReleaseRequested,
    OrderShipped,
    StockRejected,
    StockReserved,
)
from ._lifecycle import (
    Cancelled,
    Command,
    Confirmed,
    InvalidTransition,
    Item,
    Order,
    Paid,
    Payment,
    Pending,
    Pricing,
    Shipped,
    cancel,
    confirm,
    deliver,
    expect,
    pay,
    place,
    refund,
    ship,
)
from ._model import price
from ._payments import PaymentError, Payments
from ._repository import OrderRepository

__all__ = (
    "CONSUMER",
    "AnswerReservation",
    "CancelOrder",
    "DeliverOrder",
    "GetOrder",
    "OrderEntity",
    "OrderExists",
    "PayOrder",
    "PlaceOrder",
    "ShipOrder",
    "VersionMismatch",
)

#: The inbox consumer of commerce's answers (one per cluster).
CONSUMER = "orders-saga"
#: Who the saga's own transitions are by, in the audit log.
SAGA = "system:orders-saga"


class OrderExists(Conflict):
    """An order with this id exists already."""

    code = "order_exists"


class VersionMismatch(PreconditionFailed):
    """The caller's expected version (``If-Match``) is not the order's current one."""

    code = "version_mismatch"


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Answer the current order, read afresh (``NotFound`` if there is none)."""


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place the order (``pending``; ``order.placed`` asks commerce for the stock)."""

    items: tuple[Item, ...]
    who: Who
    #: The request's ``Idempotency-Key``, recorded with the order (see ``orders_placements``).
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerReservation:
    """Commerce answered (``inventory.reserved`` or ``inventory.rejected``): apply it once."""

    answer: Envelope


@dataclass(frozen=True, slots=True)
class PayOrder:
    """Charge the order's total through the payment gateway; ``paid``."""

    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ShipOrder:
    """Hand a paid order to the carrier; ``shipped``."""

    tracking_number: str
    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeliverOrder:
    """A shipped order arrived; ``delivered``."""

    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel (a paid order is refunded first); ``cancelled`` with ``reason``."""

    reason: str
    who: Who
    expected_version: int | None = None


def _shortage_reason(rejected: StockRejected) -> str:
    reasons = {s.reason for s in rejected.shortages}
    if reasons <= {"insufficient_stock"}:
        return "insufficient_stock"
    return "product_unavailable"


def _lines(pricing: Pricing) -> tuple[OrderLine, ...]:
    return tuple(
        OrderLine(uuid.UUID(line.product_id), line.quantity, line.unit_price, line.currency)
        for line in pricing.lines
    )


class OrderEntity(Actor):
    """The entity of one order (see the module docstring)."""

    def __init__(
        self,
        key: tuple[str, str],
        store: StoreHandle,
        repository: OrderRepository,
        payments: Payments,
        moved: Callable[[str, str], None] | None = None,
    ) -> None:
        self.tenant_id, self.order_id = key
        self._store = store
        self._repository = repository
        self._payments = payments
        self._moved = moved
        self.order: Order[Any] | None = None

    async def on_start(self) -> None:
        self.order = await self._load(self._store.store)

    async def receive(self, message: Any) -> Order[Any] | Failure | None:
        # A refused command is an answer, not a crash: the caller gets the
        # domain error, the entity keeps its state and nothing is dead-lettered.
        try:
            if isinstance(message, GetOrder):
                self.order = await self._load(self._store.store)
                return self._current()
            if isinstance(message, PlaceOrder):
                return await self._place(message)
            if isinstance(message, AnswerReservation):
                return await self._answer(message.answer)
            if isinstance(message, PayOrder):
                return await self._pay(message)
            if isinstance(message, ShipOrder):
                return await self._ship(message)
            if isinstance(message, DeliverOrder):
                return await self._deliver(message)
            if isinstance(message, CancelOrder):
                return await self._cancel(message)
        except (DomainError, NotFound, PaymentError) as refused:
            return Failure(refused)
        raise TypeError(f"an order takes its commands, not {type(message).__name__}")

    # ------------------------------------------------------------------ commands

    def _current(self) -> Order[Any]:
        if self.order is None:
            raise NotFound(f"no order {self.order_id}")
        return self.order

    async def _at(self, expected: int | None) -> Order[Any]:
        """The current order, at ``expected`` if the caller named a version."""
        current = self._current()
        if expected is None or expected == current.version:
            return current
        # Another node may have moved the order: only the stored row decides.
        self.order = await self._load(self._store.store)
        current = self._current()
        if expected != current.version:
            raise VersionMismatch(
                f"order {current.id} is at version {current.version}, not {expected}",
                current_version=current.version,
            )
        return current

    async def _place(self, command: PlaceOrder) -> Order[Any]:
        if self.order is not None:
            raise OrderExists(f"order {self.order_id} exists already")
        order = place(
            tenant_id=self.tenant_id,
            order_id=self.order_id,
            items=command.items,
            placed_by=command.who.actor,
            at=datetime.now(UTC),
        )
        items = tuple(OrderItem(uuid.UUID(i.product_id), i.quantity) for i in order.items)
        async with self._store.store.transaction() as tx:
            await self._repository.insert(tx, order)
            if command.idempotency_key is not None:
                await self._repository.record_placement(tx, order, command.idempotency_key)
            payload = OrderPlaced(order.id, items, order.placed_by)
            await self._record(tx, self._event(payload, command.who), "order.place", command.who)
        return self._moved_to(order)

    async def _answer(self, answer: Envelope) -> Order[Any]:
        current = self._current()
        async with self._store.store.transaction() as tx:
            if not await tx.inbox_seen(CONSUMER, str(answer.id)):
                return current  # applied before: nothing again
            who = Who(SAGA, answer.trace_id)
            reserved = answer.event_type == "inventory.reserved"
            if not isinstance(current.state, Pending):
                if reserved and isinstance(current.state, Cancelled):
                    # Cancelled before its reservation arrived: hand the stock back.
                    late = answer.caused(OrderReleaseRequested(current.id), actor_id=who.actor)
                    await self._record(tx, late, "order.release", who)
                return current
            pending = expect(current, Pending, Command.CONFIRM)
            now = datetime.now(UTC)
            after: Order[Any]
            if reserved:
                pricing = price(pending.items, view_of(answer, StockReserved).lines)
                if isinstance(pricing, Pricing):
                    after = confirm(pending, pricing, at=now)
                    payload: Any = OrderConfirmed(
                        current.id, _lines(pricing), pricing.currency, pricing.total
                    )
                    action = "order.confirm"
                else:  # cannot be sold as reserved: cancelling releases the stock
                    after = cancel(pending, pricing, at=now)
                    payload = OrderCancelled(current.id, pricing, None)
                    action = "order.cancel"
            else:
                reason = _shortage_reason(view_of(answer, StockRejected))
                after = cancel(pending, reason, at=now)
                payload = OrderCancelled(current.id, reason, None)
                action = "order.cancel"
            await self._repository.save(tx, after, current.version)
            await self._record(tx, answer.caused(payload, actor_id=who.actor), action, who)
        return self._moved_to(after)

    async def _pay(self, command: PayOrder) -> Order[Any]:
        # Fresh from the store: the provider call must not be made on a stale state.
        self.order = await self._load(self._store.store)
        confirmed = expect(await self._at(command.expected_version), Confirmed, Command.PAY)
        pricing = confirmed.state.pricing
        charge = await self._payments.charge(
            tenant_id=self.tenant_id,
            order_id=self.order_id,
            amount=pricing.total,
            currency=pricing.currency,
            idempotency_key=f"{self.order_id}:charge",
        )
        payment = Payment(charge.charge_id, charge.provider, charge.amount, charge.currency)
        paid = pay(confirmed, payment, at=datetime.now(UTC))
        event = OrderPaid(
            paid.id, payment.charge_id, payment.provider, payment.amount, payment.currency
        )
        return await self._write(paid, confirmed.version, event, "order.pay", command.who)

    async def _ship(self, command: ShipOrder) -> Order[Any]:
        paid = expect(await self._at(command.expected_version), Paid, Command.SHIP)
        shipped = ship(paid, command.tracking_number, at=datetime.now(UTC))
        event = OrderShipped(shipped.id, command.tracking_number)
        return await self._write(shipped, paid.version, event, "order.ship", command.who)

    async def _deliver(self, command: DeliverOrder) -> Order[Any]:
        shipped = expect(await self._at(command.expected_version), Shipped, Command.DELIVER)
        delivered = deliver(shipped, at=datetime.now(UTC))
        event = OrderDelivered(delivered.id)
        return await self._write(delivered, shipped.version, event, "order.deliver", command.who)

    async def _cancel(self, command: CancelOrder) -> Order[Any]:
        # Fresh from the store: a paid order is refunded through the provider.
        self.order = await self._load(self._store.store)
        current = await self._at(command.expected_version)
        state = current.state
        now = datetime.now(UTC)
        after: Order[Cancelled]
        if isinstance(state, Pending):
            after = cancel(expect(current, Pending, Command.CANCEL), command.reason, at=now)
        elif isinstance(state, Confirmed):
            after = cancel(expect(current, Confirmed, Command.CANCEL), command.reason, at=now)
        elif isinstance(state, Paid):
            paid = expect(current, Paid, Command.CANCEL)
            payment = paid.state.payment
            refunded = await self._payments.refund(
                tenant_id=self.tenant_id,
                charge_id=payment.charge_id,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=f"{self.order_id}:refund",
            )
            after = refund(paid, refunded.refund_id, command.reason, at=now)
        else:
            raise InvalidTransition(current.status, Command.CANCEL)
        event = OrderCancelled(after.id, command.reason, after.state.refund_id)
        return await self._write(after, current.version, event, "order.cancel", command.who)

    # ------------------------------------------------------------------ plumbing

    async def _load(self, store: Any) -> Order[Any] | None:
        return await self._repository.load(store, self.tenant_id, self.order_id)

    def _event(self, payload: object, who: Who) -> Envelope:
        # Every event of an order correlates with the order (its id is a UUID).
        return Envelope.new(
            payload,
            tenant_id=self.tenant_id,
            trace_id=who.trace_id,
            actor_id=who.actor,
            correlation_id=uuid.UUID(self.order_id),
        )

    async def _write(
        self, after: Order[Any], expected: int, payload: object, action: str, who: Who
    ) -> Order[Any]:
        async with self._store.store.transaction() as tx:
            await self._repository.save(tx, after, expected)
            await self._record(tx, self._event(payload, who), action, who)
        return self._moved_to(after)

    async def _record(self, tx: UnitOfWork, envelope: Envelope, action: str, who: Who) -> None:
        await tx.publish(envelope)
        detail = {"event": envelope.event_type}
        entry = AuditEntry(who.actor, action, f"orders/{self.order_id}", self.tenant_id, detail)
        await record(tx, entry)

    def _moved_to(self, order: Order[Any]) -> Order[Any]:
        self.order = order
        if self._moved is not None:
            self._moved(self.tenant_id, self.order_id)
        return order
