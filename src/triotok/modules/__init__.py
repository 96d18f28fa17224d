"""Domain modules (tenants, access, audit) and the runtime actors they rely on.

Modules import the layers below them (store, transport, supervision, actors)
and never ``triotok.http``.
"""

from ._lookup import CachedLookup as CachedLookup
from ._lookup import Directory as Directory
from ._lookup import Invalidate as Invalidate
from ._runtime import OutboxFeed as OutboxFeed
from ._runtime import StoreHandle as StoreHandle
from ._runtime import StoreOwner as StoreOwner

__all__ = ("CachedLookup", "Directory", "Invalidate", "OutboxFeed", "StoreHandle", "StoreOwner")
