"""The commerce module: products with their stock, each product an entity actor.

Declared as :data:`COMMERCE`: the ``commerce_*`` tables, ``/api/products``,
the ``products:*`` permissions, and the entities region
``/app/modules/commerce/products`` whose entities are the products
(``(tenant_id, product_id)`` keys, activated on their first command,
passivated when idle). A product's lifecycle is
:mod:`~triotok.modules.commerce._lifecycle`::

    draft <-> active;  draft, active -> archived -> draft   (never deleted)

Stock never goes negative and is never oversold, on one node or many: every
change is a conditional update the database checks (``0 <= reserved <=
on_hand``). :class:`Inventory` is the reservation API of the orders saga:
all the items of an order reserved or none, in one unit of work with its
inbox entry and its event, then released or committed (shipped) once. The
module's subscription to ``order.*`` (``_saga.py``) calls it: commerce
answers the orders module's events with its own, and imports nothing of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec, Entities
from .._context import ModuleContext
from .._module import Grant, Module, Subscription
from .._permissions import Permission
from ._currencies import CURRENCIES as CURRENCIES
from ._entity import AdjustInventory as AdjustInventory
from ._entity import ArchiveProduct as ArchiveProduct
from ._entity import BelowReserved as BelowReserved
from ._entity import CreateProduct as CreateProduct
from ._entity import GetProduct as GetProduct
from ._entity import ProductEntity as ProductEntity
from ._entity import ProductExists as ProductExists
from ._entity import ProductIsArchived as ProductIsArchived
from ._entity import UpdateProduct as UpdateProduct
from ._entity import VersionMismatch as VersionMismatch
from ._entity import Who as Who
from ._inventory import CONSUMER as CONSUMER
from ._inventory import Inventory as Inventory
from ._inventory import Item as Item
from ._inventory import Outcome as Outcome
from ._inventory import ReservationResult as ReservationResult
from ._lifecycle import TRANSITIONS as TRANSITIONS
from ._lifecycle import Command as Command
from ._lifecycle import InvalidTransition as InvalidTransition
from ._lifecycle import Status as Status
from ._lifecycle import allowed as allowed
from ._lifecycle import apply as apply
from ._lifecycle import command_to as command_to
from ._model import Product as Product
from ._repository import ProductRepository as ProductRepository
from ._repository import SkuTaken as SkuTaken
from ._repository import StaleProduct as StaleProduct
from ._saga import ORDER_EVENTS, order_events
from ._schema import SCHEMA
from ._service import REGION_PATH as REGION_PATH
from ._service import ProductService as ProductService

__all__ = (
    "COMMERCE",
    "CONSUMER",
    "CURRENCIES",
    "REGION_PATH",
    "TRANSITIONS",
    "AdjustInventory",
    "ArchiveProduct",
    "BelowReserved",
    "Command",
    "CreateProduct",
    "GetProduct",
    "InvalidTransition",
    "Inventory",
    "Item",
    "Outcome",
    "Product",
    "ProductEntity",
    "ProductExists",
    "ProductIsArchived",
    "ProductRepository",
    "ProductService",
    "ReservationResult",
    "SkuTaken",
    "StaleProduct",
    "Status",
    "UpdateProduct",
    "VersionMismatch",
    "Who",
    "allowed",
    "apply",
    "command_to",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(ProductService(ctx.system, ctx.store, ProductRepository()))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    service = ctx.get(ProductService)

    def entity(key: tuple[str, str]) -> ProductEntity:
        return ProductEntity(key, ctx.store, service.repository)

    region = Entities(
        "products",
        factory=entity,
        idle=float(ctx.settings.get("idle", 120.0)),
        max_active=int(ctx.settings.get("max_active", 10_000)),
    )
    return [ChildSpec("products", region, shutdown=None)]


_EDITORS = ("editor", "admin")

#: The commerce module's declaration.
COMMERCE = Module(
    name="commerce",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("products", "read"), ("viewer", "editor", "admin")),
        # The shop front end reads the catalogue: active products only.
        Grant(Permission("products", "read"), ("storefront",), restricted=True),
        Grant(Permission("products", "create"), _EDITORS),
        Grant(Permission("products", "update"), _EDITORS),
        Grant(Permission("products", "delete"), _EDITORS),
        Grant(Permission("products", "admin"), ("admin",)),
    ),
    routes=_routes,
    actors=_actors,
    subscriptions=(Subscription(ORDER_EVENTS, order_events),),
    setup=_setup,
    description="products and their stock: one entity actor per product; reservations",
)

fixup_module_metadata(__name__, globals())
