"""Products in the store: loads, guarded writes and stock adjustments.

Invariants:

* Every write runs in the caller's unit of work together with its event and
  audit row. Writes of a product's fields compare its ``version`` (``UPDATE
  ... WHERE version = $expected``): a write based on a stale read changes
  nothing and raises :class:`StaleProduct`, whichever node made the newer
  write.
* Stock changes are conditional updates evaluated by the database on the row
  as it is (``on_hand + $delta >= reserved``), never a read-modify-write, so
  concurrent adjustments and reservations on any number of nodes can neither
  oversell nor make stock negative. Every stock change advances ``version``
  too: the representation (and its ``ETag``) includes the stock.
* Field writes are deferred statements (``tx.defer``): a command's unit of
  work is one round trip with its event and audit row, and its errors are
  raised when it commits. Skus are guarded by the unique index alone;
  :meth:`ProductRepository.explain` turns its violation into
  :class:`SkuTaken`, naming the product that holds the sku.
* Lists are not read here: the search module serves them from its read
  model, fed by this module's events.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..._exceptions import Conflict, ConflictError
from ...store import Row, Store, UnitOfWork, row_timestamp
from ._lifecycle import Status
from ._model import Product

__all__ = ("ProductRepository", "SkuTaken", "StaleProduct", "StockLevels")

COLUMNS = (
    "tenant_id, id, sku, title, description, price, currency, status, attributes,"
    " on_hand, reserved, created_at, updated_at, version"
)


class StaleProduct(ConflictError):
    """The product changed since it was read (another activation, node or reservation).

    A :class:`ConflictError`: the entity region reloads the state and retries
    the command once when a handler raises it.
    """

    code = "stale_version"


class SkuTaken(Conflict):
    """Another product of the tenant already has this sku."""

    code = "sku_taken"


def encode_attributes(attributes: Any) -> str:
    return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"))


def product_of(row: Row) -> Product:
    return Product(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        sku=str(row["sku"]),
        title=str(row["title"]),
        description=str(row["description"]),
        price=int(row["price"]),
        currency=str(row["currency"]),
        status=Status(row["status"]),
        attributes=json.loads(str(row["attributes"])),
        on_hand=int(row["on_hand"]),
        reserved=int(row["reserved"]),
        created_at=row_timestamp(row["created_at"]),
        updated_at=row_timestamp(row["updated_at"]),
        version=int(row["version"]),
    )


class StockLevels:
    """A product's stock after a change."""

    __slots__ = ("on_hand", "reserved", "version")

    def __init__(self, on_hand: int, reserved: int, version: int) -> None:
        self.on_hand = on_hand
        self.reserved = reserved
        self.version = version


class ProductRepository:
    """Reads and writes of products; one instance per application."""

    def __init__(self) -> None:
        self.queries = 0  # statements sent by reads (the no-N+1 tests count them)

    # ------------------------------------------------------------------ reads

    async def load(
        self, store: Store | UnitOfWork, tenant_id: str, product_id: str
    ) -> Product | None:
        """The product, or ``None`` if there is none."""
        self.queries += 1
        row = await store.fetchrow(
            f"SELECT {COLUMNS} FROM commerce_products WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            product_id,
        )
        return None if row is None else product_of(row)

    # ------------------------------------------------------------------ writes

    async def insert(self, tx: UnitOfWork, product: Product) -> None:
        """Queue the product's row in ``tx`` (see :meth:`explain` for the errors of its commit)."""
        tx.defer(
            f"INSERT INTO commerce_products ({COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            product.tenant_id,
            product.id,
            product.sku,
            product.title,
            product.description,
            product.price,
            product.currency,
            product.status.value,
            encode_attributes(product.attributes),
            product.on_hand,
            product.reserved,
            product.created_at,
            product.updated_at,
            product.version,
        )

    async def save(self, tx: UnitOfWork, product: Product, expected_version: int) -> None:
        """Write ``product``'s fields at ``expected_version`` (stock untouched); else stale.

        Deferred: :class:`StaleProduct` is raised by the round trip that runs
        the update (the commit, unless the caller runs a statement first).
        """
        tx.defer(
            "UPDATE commerce_products SET sku = $1, title = $2, description = $3, price = $4,"
            " currency = $5, status = $6, attributes = $7, updated_at = $8, version = $9"
            " WHERE tenant_id = $10 AND id = $11 AND version = $12",
            product.sku,
            product.title,
            product.description,
            product.price,
            product.currency,
            product.status.value,
            encode_attributes(product.attributes),
            product.updated_at,
            product.version,
            product.tenant_id,
            product.id,
            expected_version,
            expect=1,
            error=StaleProduct(f"product {product.id} changed since version {expected_version}"),
        )

    async def adjust(
        self, tx: UnitOfWork, tenant_id: str, product_id: str, delta: int, now: datetime
    ) -> StockLevels | None:
        """Add ``delta`` to ``on_hand`` unless that leaves it below ``reserved``.

        ``None`` when refused (or there is no such product): nothing changed.
        """
        row = await tx.fetchrow(
            "UPDATE commerce_products SET on_hand = on_hand + $1, updated_at = $2,"
            " version = version + 1"
            " WHERE tenant_id = $3 AND id = $4 AND on_hand + $1 >= reserved"
            " RETURNING on_hand, reserved, version",
            delta,
            now,
            tenant_id,
            product_id,
        )
        if row is None:
            return None
        return StockLevels(int(row["on_hand"]), int(row["reserved"]), int(row["version"]))

    # ------------------------------------------------------------------ conflicts

    async def explain(self, store: Store, product: Product, error: ConflictError) -> Exception:
        """What a conflict raised by writing ``product`` means: :class:`SkuTaken`, or ``error``.

        Only a violation of the sku index is a taken sku; the product holding
        it is looked up afresh (committed data). If none holds it any more,
        ``error`` stays as it is (the entity region retries the command).
        """
        if not error.violates("commerce_products", "tenant_id", "sku"):
            return error
        other = await store.fetchval(
            "SELECT id FROM commerce_products WHERE tenant_id = $1 AND sku = $2 AND id <> $3",
            product.tenant_id,
            product.sku,
            product.id,
        )
        if other is None:
            return error
        return SkuTaken(f"sku {product.sku!r} is taken by product {other}", sku=product.sku)
