"""What a module may use: the typed context the platform hands to its declarations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .._exceptions import InvalidConfig
from ..resilience import ModeBoard
from ..store import StoreHandle
from ..supervision import ActorSystem
from ..transport import EventBus, InMemoryTransport
from ._flags import FlagSet
from ._permissions import RoleTable

if TYPE_CHECKING:
    from .access import KeyDirectory
    from .tenants import TenantDirectory

__all__ = ("ModuleContext",)

T = TypeVar("T")


@dataclass(frozen=True)
class ModuleContext:
    """The platform's services, as a module's actors, routes and checks see them.

    * ``store``: the stable handle on the current store (follows restarts of
      ``/app/store``); ``store.store`` raises ``StoreUnavailable`` between owners.
    * ``bus``: the event bus (publish through a unit of work's ``tx.publish``
      for durable events; subscriptions are declared, not made here).
    * ``events``: the node-local feed of every committed event (cache
      invalidation on every node).
    * ``tenants``/``keys``: the cached resolvers of tenants and API keys.
    * ``roles``: the application's role table.
    * ``settings``: this module's own settings (``[modules.<name>]`` in the
      TOML file), read only.
    * ``clock``: the time source (``trio.current_time``; a ``MockClock`` in tests).
    * ``mode``: the node's service mode (``ctx.mode.mode``; shed optional work
      while it is not ``full``), kept by ``/app/mode``.
    * ``flags``: the node's feature flags (``ctx.flags.enabled("name", tenant=...)``),
      kept by the flags module.
    """

    name: str
    system: ActorSystem
    store: StoreHandle
    bus: EventBus
    events: InMemoryTransport
    tenants: TenantDirectory
    keys: KeyDirectory
    roles: RoleTable
    settings: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = trio.current_time
    operator_tenant: str = "ops"
    mode: ModeBoard = field(default_factory=ModeBoard)
    flags: FlagSet = field(default_factory=FlagSet)
    _provided: dict[type[Any], Any] = field(default_factory=dict, repr=False)

    def provide(self, service: object) -> None:
        """Make ``service`` available by its type (a module's ``setup`` does this)."""
        kind = type(service)
        if kind in self._provided:
            raise InvalidConfig("service", f"a {kind.__qualname__} is provided already")
        self._provided[kind] = service

    def get(self, kind: type[T]) -> T:
        """The service of type ``kind`` a module's ``setup`` provided.

        Only the module that defines ``kind`` can name it, so modules still
        cannot reach into each other.
        """
        try:
            service = self._provided[kind]
        except KeyError:
            raise LookupError(f"no {kind.__qualname__} was provided") from None
        assert isinstance(service, kind)
        return service

    def for_module(self, name: str, settings: Mapping[str, Any]) -> ModuleContext:
        """The same services, named and configured for module ``name``."""
        return ModuleContext(
            name,
            self.system,
            self.store,
            self.bus,
            self.events,
            self.tenants,
            self.keys,
            self.roles,
            dict(settings),
            self.clock,
            self.operator_tenant,
            self.mode,
            self.flags,
            self._provided,
        )
