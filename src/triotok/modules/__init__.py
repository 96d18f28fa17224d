"""The Module contract, the permission model, and the domain modules built on them.

A module is one folder that exports a :class:`Module` declaration (its
migrations, permissions, routes, actors, subscriptions and health checks);
``triotok.app`` composes a tuple of them. Modules import the layers below
them (store, transport, supervision, actors), never each other, and never
``triotok.http`` except from their own routes file.
"""

from .._util import fixup_module_metadata
from ._commands import Who as Who
from ._commands import record_change as record_change
from ._context import ModuleContext as ModuleContext
from ._flags import Flag as Flag
from ._flags import FlagEvaluation as FlagEvaluation
from ._flags import FlagSet as FlagSet
from ._flags import FlagStatistics as FlagStatistics
from ._lookup import CachedLookup as CachedLookup
from ._lookup import Directory as Directory
from ._lookup import Invalidate as Invalidate
from ._module import Grant as Grant
from ._module import HealthCheck as HealthCheck
from ._module import HealthChecks as HealthChecks
from ._module import HealthReport as HealthReport
from ._module import Module as Module
from ._module import Subscription as Subscription
from ._module import check_modules as check_modules
from ._permissions import ACTIONS as ACTIONS
from ._permissions import Permission as Permission
from ._permissions import RoleTable as RoleTable
from ._permissions import authorize as authorize
from ._subscriber import SubscriberActor as SubscriberActor

__all__ = (
    "ACTIONS",
    "CachedLookup",
    "Directory",
    "Flag",
    "FlagEvaluation",
    "FlagSet",
    "FlagStatistics",
    "Grant",
    "HealthCheck",
    "HealthChecks",
    "HealthReport",
    "Invalidate",
    "Module",
    "ModuleContext",
    "Permission",
    "RoleTable",
    "SubscriberActor",
    "Subscription",
    "Who",
    "authorize",
    "check_modules",
    "record_change",
)

fixup_module_metadata(__name__, globals())
