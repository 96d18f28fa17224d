"""What the commerce routes and the orders saga use: the entity region, reservations."""

from __future__ import annotations

from typing import Any

from ...store import StoreHandle
from ...supervision import ActorSystem
from ._inventory import Inventory
from ._model import Product
from ._repository import ProductRepository

__all__ = ("REGION_PATH", "ProductService")

#: Where the product entities live.
REGION_PATH = "/app/modules/commerce/products"

#: How long a request waits for its product's entity (activation plus the command).
ASK_TIMEOUT = 10.0


class ProductService:
    """The module's services, provided to its routes through the module context."""

    def __init__(
        self,
        system: ActorSystem,
        store: StoreHandle,
        repository: ProductRepository,
        inventory: Inventory | None = None,
    ) -> None:
        self._system = system
        self._store = store
        self.repository = repository
        self.inventory = inventory or Inventory()

    async def ask(self, tenant_id: str, product_id: str, command: Any) -> Product:
        """Hand ``command`` to the product's entity (activated if needed); its reply or error."""
        region: Any = self._system.ref(REGION_PATH)
        reply: Product = await region.ask((tenant_id, product_id), command, timeout=ASK_TIMEOUT)
        return reply

    async def passivate(self, tenant_id: str, product_id: str) -> None:
        """Passivate the product's entity if it is active (its state stays in the store)."""
        region: Any = self._system.ref(REGION_PATH)
        await region.passivate((tenant_id, product_id))
