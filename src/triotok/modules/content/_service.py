"""What the content routes use: the entity region (lists are the search module's)."""

from __future__ import annotations

from typing import Any

from ...store import StoreHandle
from ...supervision import ActorSystem, EntitiesRef
from ._model import ContentNode
from ._repository import ContentRepository

__all__ = ("REGION_PATH", "ContentService")

#: Where the content node entities live.
REGION_PATH = "/app/modules/content/nodes"

#: How long a request waits for its node's entity (activation plus the command).
ASK_TIMEOUT = 10.0


class ContentService:
    """The module's services, provided to its routes through the module context."""

    def __init__(self, system: ActorSystem, store: StoreHandle, repository: ContentRepository):
        self._system = system
        self._store = store
        self.repository = repository

    def _region(self) -> EntitiesRef:
        region = self._system.ref(REGION_PATH)
        assert isinstance(region, EntitiesRef)  # the module's spec starts a region there
        return region

    async def ask(self, tenant_id: str, node_id: str, command: Any) -> ContentNode | None:
        """Hand ``command`` to the node's entity (activated if needed); its reply or error."""
        reply: ContentNode | None = await self._region().ask(
            (tenant_id, node_id), command, timeout=ASK_TIMEOUT
        )
        return reply

    async def passivate(self, tenant_id: str, node_id: str) -> None:
        """Passivate the node's entity if it is active (its state stays in the store)."""
        await self._region().passivate((tenant_id, node_id))
