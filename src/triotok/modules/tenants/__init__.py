"""Tenants: records, their events, the repository and the cached resolver (``/app/tenants``).

::

    from triotok.modules.tenants import TenantDirectory, TenantRepository, TenantResolver

    repository = TenantRepository(store_handle)
    directory = TenantDirectory("tenants")
    await system.spawn(TenantResolver, directory, repository, events, name="tenants")
    tenant = await directory.get("acme")      # Tenant, or None if unknown
"""

from ._model import TENANT_ID_PATTERN as TENANT_ID_PATTERN
from ._model import Tenant as Tenant
from ._model import TenantCreated as TenantCreated
from ._model import TenantDeactivated as TenantDeactivated
from ._model import TenantUpdated as TenantUpdated
from ._model import validate_tenant_id as validate_tenant_id
from ._repository import TenantRepository as TenantRepository
from ._repository import TenantRepositoryStatistics as TenantRepositoryStatistics
from ._resolver import TenantDirectory as TenantDirectory
from ._resolver import TenantResolver as TenantResolver

__all__ = (
    "TENANT_ID_PATTERN",
    "Tenant",
    "TenantCreated",
    "TenantDeactivated",
    "TenantDirectory",
    "TenantRepository",
    "TenantRepositoryStatistics",
    "TenantResolver",
    "TenantUpdated",
    "validate_tenant_id",
)
