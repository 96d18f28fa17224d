"""``/app/modules/flags/loader``: keeps this node's :class:`~triotok.modules.FlagSet` current.

It loads every flag and tenant value at start, then reloads what each
``flag.*`` event names (events of any node reach every node through the
outbox feed), one reload at a time in event order (its mailbox), so the set
ends as the store's latest state. A full reload every ``refresh`` seconds
catches anything missed while the feed was restarting. A store that is
down is no crash: the set keeps its last state (flags keep answering) and
the next event or refresh brings it up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from ...actors import Actor, UnknownMessage
from ...store import StoreHandle, StoreUnavailable
from ...transport import Envelope, InMemoryTransport
from .._flags import FlagSet
from ._events import FlagChanged, FlagTenantChanged
from ._repository import FlagRepository

__all__ = ("FlagLoader", "Reload")

logger = logging.getLogger("triotok.flags")


@dataclass(frozen=True, slots=True)
class Reload:
    """Tell or ask :class:`FlagLoader`: reload flag ``name`` (``None``: everything)."""

    name: str | None = None
    tenant_id: str | None = None


class FlagLoader(Actor):
    """See the module docstring."""

    def __init__(
        self,
        flags: FlagSet,
        store: StoreHandle,
        events: InMemoryTransport,
        repository: FlagRepository,
        *,
        refresh: float = 60.0,
    ) -> None:
        self._flags = flags
        self._store = store
        self._events = events
        self._repository = repository
        self._refresh = refresh
        self._subscription = "flags-invalidation"

    async def on_start(self) -> None:
        await self._events.unsubscribe(self._subscription)
        await self._events.subscribe(self._subscription, self._on_event, prefix="flag.")
        self.ctx.register("flags", self._flags)
        try:
            await self._reload_all()
        except StoreUnavailable:
            logger.warning("flags: the store is unavailable; loading them later")
        self.ctx.start_soon(self._refresh_loop)

    async def on_stop(self) -> None:
        await self._events.unsubscribe(self._subscription)

    async def _on_event(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if isinstance(payload, FlagChanged):
            self.ctx.ref.tell(Reload(payload.name))
        elif isinstance(payload, FlagTenantChanged):
            self.ctx.ref.tell(Reload(payload.name, payload.tenant_id))

    async def _refresh_loop(self) -> None:
        while True:
            await trio.sleep(self._refresh)
            self.ctx.ref.tell(Reload())

    async def receive(self, message: Any) -> Any:
        if not isinstance(message, Reload):
            raise UnknownMessage(self.ctx.path, message, (Reload,))
        try:
            if message.name is None:
                await self._reload_all()
            elif message.tenant_id is not None:
                value = await self._repository.tenant_value(
                    self._store.store, message.name, message.tenant_id
                )
                self._flags.put_tenant_value(message.name, message.tenant_id, value)
            else:
                flag = await self._repository.get(self._store.store, message.name)
                if flag is None:
                    self._flags.remove(message.name)
                else:
                    self._flags.put(flag)
        except StoreUnavailable:
            # Keep the last state; the periodic full reload catches up.
            logger.warning("flags: reloading %s failed: the store is unavailable", message)
        return None

    async def _reload_all(self) -> None:
        flags, values = await self._repository.all(self._store.store)
        self._flags.replace_all(flags, values)
