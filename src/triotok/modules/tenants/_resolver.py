"""``/app/tenants``: resolves a request's tenant through a LoadingCache + SingleFlight."""

from __future__ import annotations

from ...transport import Envelope, InMemoryTransport
from .._lookup import CachedLookup, Directory
from ._model import Tenant
from ._repository import TenantRepository

__all__ = ("TenantDirectory", "TenantResolver")

#: The hot-path handle: ``await tenants.get("acme") -> Tenant | None``.
TenantDirectory = Directory[str, Tenant]


class TenantResolver(CachedLookup[str, Tenant]):
    """Owns the tenant cache; drops entries on ``tenant.*`` events from any node.

    A stampede of requests for an uncached tenant shares one store query
    (SingleFlight); an unknown tenant is cached negatively for
    ``negative_ttl`` seconds, so probing random ids does not reach the store
    on every request.

    ::

        directory = TenantDirectory("tenants")
        await system.spawn(TenantResolver, directory, repository, events, name="tenants")
        tenant = await directory.get("acme")
    """

    def __init__(
        self,
        directory: TenantDirectory,
        repository: TenantRepository,
        events: InMemoryTransport | None = None,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        stale_grace: float = 3600.0,
    ) -> None:
        super().__init__(
            directory,
            repository.get,
            events=events,
            event_prefix="tenant.",
            key_of=_tenant_of,
            ttl=ttl,
            negative_ttl=negative_ttl,
            stale_grace=stale_grace,
        )


def _tenant_of(envelope: Envelope) -> str | None:
    return envelope.tenant_id
