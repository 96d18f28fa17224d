"""The product entity: one actor per ``(tenant_id, product_id)``, its commands in order.

Invariants:

* The entity's state is the stored row as of its last load or write
  (``on_start`` loads it; a region restart after a crash or a stale write
  reloads it), or ``None`` while the product does not exist. Reservations
  change stock outside the entity (one unit of work over all the items of an
  order), so ``GetProduct`` reloads the row: a read never answers stock that
  an order has since reserved.
* An entity activated by a ``CreateProduct`` does not load: for a new id
  there is no row to find. The primary key still decides: if the row exists
  after all, the insert's unique violation makes the entity load it and
  answer ``ProductExists``. Until a create succeeds or that load happens the
  state is *unknown*, and any other command loads it first.
* Every accepted command writes the row, exactly one event and one audit
  entry in one unit of work, then replaces the state; a refused command
  (invalid input, an illegal transition, a version that does not match, a
  delta below the reserved units) writes nothing.
* Field writes are guarded by ``version``; a stale one raises
  ``StaleProduct``, the region reloads the state and retries the command
  once, where the caller's ``expected_version`` (``If-Match``) then decides.
  Stock adjustments are deltas checked by the database (``on_hand + delta >=
  reserved``) and need no expected version.
* Field writes are one round trip (every statement deferred, ``tx.defer``);
  an adjustment two (its update answers the new stock its event carries).
  Their conflicts are mapped when the unit of work commits: a taken sku
  becomes ``SkuTaken``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import (
    Conflict,
    ConflictError,
    DomainError,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)
from ...actors import Actor, Failure
from ...store import StoreHandle, UnitOfWork
from .._commands import Who, record_change
from ._events import InventoryAdjusted, ProductArchived, ProductCreated, ProductUpdated, StockLine
from ._lifecycle import Command, Status, apply, command_to
from ._model import AttributeValue, Product
from ._repository import ProductRepository

__all__ = (
    "AdjustInventory",
    "ArchiveProduct",
    "BelowReserved",
    "CreateProduct",
    "GetProduct",
    "ProductEntity",
    "ProductExists",
    "ProductIsArchived",
    "UpdateProduct",
    "VersionMismatch",
    "Who",
)


class VersionMismatch(PreconditionFailed):
    """The caller's expected version is not the product's current one."""

    code = "version_mismatch"


class ProductExists(Conflict):
    """A product with this id exists already."""

    code = "product_exists"


class ProductIsArchived(Conflict):
    """An archived product's fields do not change (restore it first: ``status: draft``)."""

    code = "product_archived"


class BelowReserved(Conflict):
    """The adjustment would leave fewer units on hand than orders have reserved."""

    code = "stock_below_reserved"


@dataclass(frozen=True, slots=True)
class GetProduct:
    """Answer the current product, read afresh (``NotFound`` if there is none)."""


@dataclass(frozen=True, slots=True)
class CreateProduct:
    """Create the product as a draft with no stock."""

    sku: str
    title: str
    price: int
    currency: str
    who: Who
    description: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    """Change fields; ``changes`` holds only what the caller sent (``status``: a Status)."""

    changes: Mapping[str, Any]
    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ArchiveProduct:
    """Archive the product (what ``DELETE`` does: products are never deleted)."""

    who: Who
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class AdjustInventory:
    """Add ``delta`` (negative: remove) to ``on_hand``; ``reason`` goes into the event."""

    delta: int
    reason: str
    who: Who


class ProductEntity(Actor):
    """The entity of one product (see the module docstring)."""

    def __init__(
        self, key: tuple[str, str], store: StoreHandle, repository: ProductRepository
    ) -> None:
        self.tenant_id, self.product_id = key
        self._store = store
        self._repository = repository
        self.product: Product | None = None
        #: ``product`` is the stored state (False: not loaded, see the module docstring).
        self.loaded = False

    async def on_start(self) -> None:
        if isinstance(self.ctx.peek(), CreateProduct):
            return  # a create needs no load: the primary key decides (module docstring)
        # A store that is down is no crash: the state loads with the first command
        # (else activations during an outage would crash-loop and poison the key).
        try:
            self.product = await self._load(self._store.store)
            self.loaded = True
        except StoreUnavailable:
            self.loaded = False

    async def receive(self, message: Any) -> Product | Failure:
        # A refused command is an answer, not a crash: the caller gets the
        # domain error, the entity keeps its state and nothing is dead-lettered.
        # So is a store that is down (503 to the caller; nothing was written).
        try:
            if not self.loaded and not isinstance(message, CreateProduct | GetProduct):
                self.product = await self._load(self._store.store)
            if isinstance(message, GetProduct):
                self.product = await self._load(self._store.store)
                return self._current()
            if isinstance(message, CreateProduct):
                return await self._create(message)
            if isinstance(message, UpdateProduct):
                return await self._update(message)
            if isinstance(message, ArchiveProduct):
                return await self._archive(message)
            if isinstance(message, AdjustInventory):
                return await self._adjust(message)
        except (DomainError, NotFound, StoreUnavailable) as refused:
            return Failure(refused)
        raise TypeError(f"a product takes its commands, not {type(message).__name__}")

    # ------------------------------------------------------------------ commands

    def _current(self) -> Product:
        if self.product is None:
            raise NotFound(f"no product {self.product_id}")
        return self.product

    async def _expect(self, expected: int | None) -> Product:
        """The current product, at ``expected`` if the caller named a version."""
        current = self._current()
        if expected is None or expected == current.version:
            return current
        # Reservations and other nodes write without this entity: its state may be
        # behind the version the caller read elsewhere. Only the stored row decides.
        self.product = await self._load(self._store.store)
        current = self._current()
        if expected != current.version:
            raise VersionMismatch(
                f"product {current.id} is at version {current.version}, not {expected}",
                current_version=current.version,
            )
        return current

    async def _create(self, command: CreateProduct) -> Product:
        if self.product is not None:
            raise ProductExists(f"product {self.product_id} exists already")
        now = datetime.now(UTC)
        product = Product(
            tenant_id=self.tenant_id,
            id=self.product_id,
            sku=command.sku,
            title=command.title,
            description=command.description,
            price=command.price,
            currency=command.currency,
            status=Status.DRAFT,
            attributes=dict(command.attributes),
            created_at=now,
            updated_at=now,
        )

        async def write(tx: UnitOfWork) -> None:
            await self._repository.insert(tx, product)
            await self._record(
                tx, ProductCreated(product.snapshot()), "product.create", command.who, product
            )

        await self._write(product, write, creating=True)
        self.product = product
        self.loaded = True
        return product

    async def _update(self, command: UpdateProduct) -> Product:
        current = await self._expect(command.expected_version)
        changes = dict(command.changes)
        status = changes.pop("status", current.status)
        lifecycle = command_to(current.status, status)
        if lifecycle is not None:
            status = apply(current.status, lifecycle)
        if status is Status.ARCHIVED and changes:
            raise ProductIsArchived(
                f"product {current.id} is archived; restore it first (status: draft)"
            )
        product = current.with_changes(
            **changes, status=status, updated_at=datetime.now(UTC), version=current.version + 1
        )
        fields = tuple(sorted(command.changes))

        async def write(tx: UnitOfWork) -> None:
            await self._repository.save(tx, product, current.version)
            await self._record(
                tx,
                ProductUpdated(product.snapshot(), fields),
                "product.update",
                command.who,
                product,
                fields=list(fields),
            )

        await self._write(product, write)
        self.product = product
        return product

    async def _archive(self, command: ArchiveProduct) -> Product:
        current = await self._expect(command.expected_version)
        status = apply(current.status, Command.ARCHIVE)
        product = current.with_changes(
            status=status, updated_at=datetime.now(UTC), version=current.version + 1
        )

        async def write(tx: UnitOfWork) -> None:
            await self._repository.save(tx, product, current.version)
            await self._record(
                tx, ProductArchived(product.snapshot()), "product.archive", command.who, product
            )

        await self._write(product, write)
        self.product = product
        return product

    async def _adjust(self, command: AdjustInventory) -> Product:
        current = self._current()
        now = datetime.now(UTC)
        async with self._store.store.transaction() as tx:
            levels = await self._repository.adjust(
                tx, self.tenant_id, self.product_id, command.delta, now
            )
            if levels is None:
                fresh = await self._load(tx)
            else:
                if levels.version == current.version + 1:
                    fresh = current.with_changes(
                        on_hand=levels.on_hand,
                        reserved=levels.reserved,
                        version=levels.version,
                        updated_at=now,
                    )
                else:  # something else wrote the row meanwhile: take all of it
                    fresh = await self._load(tx)
                assert fresh is not None
                line = StockLine(
                    fresh.snapshot().product_id,
                    command.delta,
                    levels.on_hand,
                    levels.reserved,
                    levels.version,
                )
                adjusted = InventoryAdjusted(line, command.delta, command.reason)
                await self._record(
                    tx,
                    adjusted,
                    "product.inventory",
                    command.who,
                    fresh,
                    delta=command.delta,
                    reason=command.reason,
                )
        self.product = fresh
        if levels is None:
            if fresh is None:
                raise NotFound(f"no product {self.product_id}")
            raise BelowReserved(
                f"removing {-command.delta} of {fresh.on_hand} units on hand would leave fewer"
                f" than the {fresh.reserved} reserved by orders",
                on_hand=fresh.on_hand,
                reserved=fresh.reserved,
                available=fresh.available,
                delta=command.delta,
            )
        assert fresh is not None
        return fresh

    # ------------------------------------------------------------------ plumbing

    async def _load(self, store: Any) -> Product | None:
        product = await self._repository.load(store, self.tenant_id, self.product_id)
        self.loaded = True
        return product

    async def _write(
        self,
        product: Product,
        write: Callable[[UnitOfWork], Awaitable[None]],
        *,
        creating: bool = False,
    ) -> None:
        """Run ``write(tx)`` in one unit of work and say what its conflicts mean.

        A taken sku becomes :class:`SkuTaken`; creating over an existing row
        loads it and answers :class:`ProductExists`. Any other conflict (a
        stale version) is raised as it is, for the region to retry.
        """
        try:
            async with self._store.store.transaction() as tx:
                await write(tx)
        except ConflictError as conflict:
            if creating:
                # The row may exist after all (whichever key the database
                # reported first): answer as an entity that had loaded it would.
                self.product = await self._load(self._store.store)
                if self.product is not None:
                    raise ProductExists(f"product {self.product_id} exists already") from None
            explained = await self._repository.explain(self._store.store, product, conflict)
            if explained is conflict:
                raise
            raise explained from conflict

    async def _record(
        self,
        tx: UnitOfWork,
        payload: object,
        action: str,
        who: Who,
        product: Product,
        **detail: Any,
    ) -> None:
        await record_change(
            tx,
            payload,
            tenant_id=self.tenant_id,
            who=who,
            action=action,
            resource=f"products/{product.id}",
            **detail,
        )
