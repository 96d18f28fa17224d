"""A hypothesis state machine over live product entities on a real SQLite store.

Random creates, edits (right, stale and missing versions), status changes,
archives, stock adjustments (some below the reserved units), reservations
made outside the entities (as the orders saga makes them), entity crashes,
passivations and idle time, across a few products. Invariants after every
step:

* ``0 <= reserved <= on_hand`` in every row, and the entities answer it;
* only legal transitions happen: a command is accepted exactly when the
  model allows it, and refused with the typed error otherwise;
* every accepted command left exactly one event in the outbox, of its type,
  and refused commands left none;
* the stored rows equal the model (status, version, stock, title).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from triotok.app import schemas_of
from triotok.modules.commerce import (
    TRANSITIONS,
    AdjustInventory,
    ArchiveProduct,
    BelowReserved,
    Command,
    CreateProduct,
    GetProduct,
    InvalidTransition,
    Inventory,
    Item,
    Outcome,
    ProductEntity,
    ProductIsArchived,
    ProductRepository,
    Status,
    UpdateProduct,
    VersionMismatch,
    Who,
)
from triotok.store import StoreHandle, StoreOwner
from triotok.supervision import Entities
from triotok.testing import ActorStateMachine
from triotok.transport import Envelope, decode

from .test_inventory import OrderPlaced

TENANT = "acme"
WHO = Who("key:test")


@dataclass(frozen=True)
class Known:
    status: Status
    version: int
    title: str
    on_hand: int = 0
    reserved: int = 0


class ProductMachine(ActorStateMachine):
    system_options = {"intensity": 1000}
    # Entities wait for the SQLite thread, which trio counts as blocked: never jump
    # the clock past real work (the rules move time with advance()).
    autojump_threshold = 10.0
    products = Bundle("products")

    @initialize()
    async def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="triotok-commerce-"))
        self.handle = StoreHandle()
        url = f"sqlite:///{self._tmp / 'commerce.db'}"
        await self.system.spawn(StoreOwner, self.handle, url, schemas_of(), name="store")
        repository = ProductRepository()
        spec = Entities(
            "products",
            factory=lambda key: ProductEntity(key, self.handle, repository),
            idle=30.0,
            max_active=2,
            intensity=1000,
        )
        self.region = await self.system.system.spawn_entities(spec)
        self.inventory = Inventory()
        self.model: dict[str, Known] = {}
        self.expected_events: dict[str, list[str]] = {}
        self.orders = 0

    async def _ask(self, product_id: str, command: Any) -> Any:
        return await self.region.ask((TENANT, product_id), command, timeout=30.0)

    def _accepted(self, product_id: str, event_type: str, known: Known) -> None:
        self.model[product_id] = known
        self.expected_events[product_id].append(event_type)

    @rule(target=products)
    async def create(self) -> str:
        product_id = str(uuid.uuid4())
        command = CreateProduct(f"SKU-{product_id[:8]}", "T0", 100, "EUR", WHO)
        product = await self._ask(product_id, command)
        assert (product.status, product.version) == (Status.DRAFT, 1)
        self.model[product_id] = Known(Status.DRAFT, 1, "T0")
        self.expected_events[product_id] = ["product.created"]
        return product_id

    @rule(product_id=products, title=st.sampled_from(["T1", "T2"]), stale=st.booleans())
    async def update(self, product_id: str, title: str, stale: bool) -> None:
        known = self.model[product_id]
        command = UpdateProduct({"title": title}, WHO, known.version + (1 if stale else 0))
        refused: Exception | None = None
        try:
            product = await self._ask(product_id, command)
        except (VersionMismatch, ProductIsArchived) as error:
            refused = error
        if stale:
            assert isinstance(refused, VersionMismatch)
            return
        if known.status is Status.ARCHIVED:
            assert isinstance(refused, ProductIsArchived)
            return
        assert refused is None
        after = replace(known, version=known.version + 1, title=title)
        assert (product.title, product.version) == (title, after.version)
        self._accepted(product_id, "product.updated", after)

    @rule(product_id=products, target_status=st.sampled_from([Status.DRAFT, Status.ACTIVE]))
    async def change_status(self, product_id: str, target_status: Status) -> None:
        known = self.model[product_id]
        command = UpdateProduct({"status": target_status}, WHO, known.version)
        legal = known.status is target_status or any(
            source is known.status and after is target_status
            for (source, _), after in TRANSITIONS.items()
        )
        refused: InvalidTransition | None = None
        try:
            product = await self._ask(product_id, command)
        except InvalidTransition as error:
            refused = error
        if refused is not None:
            assert not legal, f"{known.status} -> {target_status} refused"
            assert refused.extra["current"] == known.status.value
            return
        assert legal, f"{known.status} -> {target_status} accepted"
        after = replace(known, status=target_status, version=known.version + 1)
        assert (product.status, product.version) == (after.status, after.version)
        self._accepted(product_id, "product.updated", after)

    @rule(product_id=products)
    async def archive(self, product_id: str) -> None:
        known = self.model[product_id]
        legal = (known.status, Command.ARCHIVE) in TRANSITIONS
        try:
            product = await self._ask(product_id, ArchiveProduct(WHO, known.version))
        except InvalidTransition:
            assert not legal
            return
        assert legal
        after = replace(known, status=Status.ARCHIVED, version=known.version + 1)
        assert product.status is Status.ARCHIVED
        self._accepted(product_id, "product.archived", after)

    @rule(product_id=products, delta=st.integers(-6, 8))
    async def adjust(self, product_id: str, delta: int) -> None:
        known = self.model[product_id]
        legal = known.on_hand + delta >= known.reserved
        below: BelowReserved | None = None
        try:
            product = await self._ask(product_id, AdjustInventory(delta, "count", WHO))
        except BelowReserved as error:
            below = error
        if below is not None:
            assert not legal
            assert (below.extra["on_hand"], below.extra["reserved"]) == (
                known.on_hand,
                known.reserved,
            )
            return
        assert legal
        after = replace(known, on_hand=known.on_hand + delta, version=known.version + 1)
        assert (product.on_hand, product.reserved, product.version) == (
            after.on_hand,
            after.reserved,
            after.version,
        )
        self._accepted(product_id, "inventory.adjusted", after)

    @rule(product_id=products, quantity=st.integers(1, 4), then_update=st.booleans())
    async def reserve(self, product_id: str, quantity: int, then_update: bool) -> None:
        # Outside the entity, as the saga does: the entity must notice on its next read.
        known = self.model[product_id]
        self.orders += 1
        order_id = f"o-{self.orders}"
        placed = Envelope.new(OrderPlaced(order_id), tenant_id=TENANT)
        store = self.handle.store
        result = await self.inventory.reserve(store, placed, order_id, [Item(product_id, quantity)])
        fits = known.status is Status.ACTIVE and known.on_hand - known.reserved >= quantity
        assert result.outcome is (Outcome.RESERVED if fits else Outcome.REJECTED)
        if fits:
            after = replace(known, reserved=known.reserved + quantity, version=known.version + 1)
            self.model[product_id] = after
            self.expected_events[product_id].append("inventory.reserved")
        if then_update:
            # The version read elsewhere is newer than the entity's: still accepted.
            await self.update(product_id, "T2", stale=False)

    @rule(product_id=products)
    async def crash(self, product_id: str) -> None:
        # An unknown message crashes the entity: the region restarts it, reloading its row.
        with contextlib.suppress(Exception):
            await self._ask(product_id, object())

    @rule(product_id=products)
    async def passivate(self, product_id: str) -> None:
        await self.region.passivate((TENANT, product_id))

    @rule(seconds=st.sampled_from([1.0, 31.0]))
    async def wait(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @invariant()
    async def entities_answer_the_model(self) -> None:
        for product_id, known in self.model.items():
            product = await self._ask(product_id, GetProduct())
            assert 0 <= product.reserved <= product.on_hand
            assert (
                product.status,
                product.version,
                product.title,
                product.on_hand,
                product.reserved,
            ) == (known.status, known.version, known.title, known.on_hand, known.reserved)

    @invariant()
    async def stored_rows_equal_the_model(self) -> None:
        rows = await self.handle.store.fetch(
            "SELECT id, status, version, title, on_hand, reserved FROM commerce_products"
        )
        for r in rows:
            assert 0 <= int(r["reserved"]) <= int(r["on_hand"])
        stored = {
            str(r["id"]): Known(
                Status(r["status"]),
                int(r["version"]),
                str(r["title"]),
                int(r["on_hand"]),
                int(r["reserved"]),
            )
            for r in rows
        }
        assert stored == self.model

    @invariant()
    async def one_event_per_accepted_command(self) -> None:
        rows = await self.handle.store.fetch("SELECT event_type, payload FROM outbox ORDER BY id")
        seen: dict[str, list[str]] = {}
        for row in rows:
            payload = decode(bytes(row["payload"])).payload
            if str(row["event_type"]) == "inventory.rejected":
                continue  # answers an order, not a product command
            holder = getattr(payload, "product", None) or getattr(payload, "line", None)
            if holder is None:
                [holder] = payload.lines
            seen.setdefault(str(holder.product_id), []).append(str(row["event_type"]))
        assert seen == {k: v for k, v in self.expected_events.items() if v}

    def teardown(self) -> None:
        super().teardown()
        if hasattr(self, "_tmp"):
            shutil.rmtree(self._tmp, ignore_errors=True)


ProductMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestProductEntities = ProductMachine.TestCase
