"""Access control: API keys (hashed, cached) and role-based permissions.

::

    from triotok.modules.access import Permission, Role, authorize, verify_key

    key = verify_key(await keys.get(parse_key(presented)), presented)   # 401 if bad
    authorize(key.role, key.tenant_id, Permission("tenant", "read"),
              request_tenant="acme", operator_tenant="ops")            # 403 if not allowed
"""

from ._keys import ApiKey as ApiKey
from ._keys import ApiKeyRepository as ApiKeyRepository
from ._keys import ApiKeyRevoked as ApiKeyRevoked
from ._keys import KeyDirectory as KeyDirectory
from ._keys import KeyResolver as KeyResolver
from ._keys import hash_key as hash_key
from ._keys import parse_key as parse_key
from ._keys import verify_key as verify_key
from ._roles import ROLE_PERMISSIONS as ROLE_PERMISSIONS
from ._roles import Permission as Permission
from ._roles import Role as Role
from ._roles import authorize as authorize

__all__ = (
    "ROLE_PERMISSIONS",
    "ApiKey",
    "ApiKeyRepository",
    "ApiKeyRevoked",
    "KeyDirectory",
    "KeyResolver",
    "Permission",
    "Role",
    "authorize",
    "hash_key",
    "parse_key",
    "verify_key",
)
