"""Where long-lived store users get their store: the store itself, or a handle to it.

An application keeps its store behind a handle (``triotok.modules.StoreHandle``)
that a restarted store owner re-points; actors that outlive one store
(relay, consumers) take such a handle and ask it for the current store at the
start of each incarnation. Tests and small programs pass the store directly.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias

from ._types import Store

__all__ = ("StoreLike", "StoreSource", "current_store")


class StoreSource(Protocol):
    """Anything that can wait for the current open store (``StoreHandle``)."""

    async def wait_open(self) -> Store:
        """Return the open store, waiting while none is open."""
        ...


StoreLike: TypeAlias = Store | StoreSource


async def current_store(source: StoreLike) -> Store:
    """``source`` itself if it is a store, else the store it currently holds."""
    wait_open = getattr(source, "wait_open", None)
    if wait_open is not None:
        store: Store = await wait_open()
        return store
    return source  # type: ignore[return-value]  # not a StoreSource, so a Store
