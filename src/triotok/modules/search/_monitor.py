"""``/app/modules/search/index``: the lag, the rebuilds, and the rebuild an operator started.

The actor shows two components in the tree: ``projection`` (events applied,
duplicates, failures; applied and head positions, lag in events and seconds)
and ``rebuild`` (the newest rebuild: rows done of the total, rows/s, ETA),
refreshed from the store every ``refresh_interval`` seconds, so a rebuild
running in another process (``triotok index rebuild``) shows too. It runs at
most one rebuild itself (:class:`StartRebuild`), in its own nursery: a
restart of the actor cancels it, and the next start resumes it from its
last checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass
from typing import Any

import trio

from ..._exceptions import DomainError, StoreError
from ...actors import Actor, Failure, UnknownMessage
from ._rebuild import Rebuilder, RebuildOptions, RebuildProgress, RebuildRunning, latest_rebuilds
from ._service import SearchService

__all__ = ("IndexMonitor", "RebuildStatistics", "StartRebuild")

logger = logging.getLogger("triotok.search")


@dataclass(frozen=True, slots=True)
class StartRebuild:
    """Ask :class:`IndexMonitor`: start (or resume) a rebuild; the reply is its progress."""

    options: RebuildOptions


@dataclass(frozen=True, slots=True)
class RebuildStatistics:
    """The newest rebuild (a running one first), for the tree and the ``/system`` page."""

    running: int
    rebuild_id: int | None = None
    status: str | None = None
    tenant_id: str | None = None
    types: str | None = None
    rows_done: int = 0
    rows_total: int = 0
    percent: float = 0.0
    rows_per_s: float = 0.0
    eta_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _RebuildView:
    def __init__(self, service: SearchService) -> None:
        self._service = service

    def statistics(self) -> RebuildStatistics:
        rebuilds = self._service.rebuilds
        running = [r for r in rebuilds if r.status == "running"]
        shown = running[0] if running else (rebuilds[0] if rebuilds else None)
        if shown is None:
            return RebuildStatistics(0)
        return RebuildStatistics(
            running=len(running),
            rebuild_id=shown.id,
            status=shown.status,
            tenant_id=shown.tenant_id,
            types=",".join(shown.types),
            rows_done=shown.rows_done,
            rows_total=shown.rows_total,
            percent=round(shown.fraction * 100, 1),
            rows_per_s=shown.rows_per_s,
            eta_s=shown.eta_s,
        )


class IndexMonitor(Actor):
    """See the module docstring."""

    def __init__(self, service: SearchService) -> None:
        self._service = service
        self._running: trio.CancelScope | None = None

    async def on_start(self) -> None:
        self.ctx.register("projection", self._service)
        self.ctx.register("rebuild", _RebuildView(self._service))
        # A first look before the actor counts as running: the tree shows the lag at once.
        with contextlib.suppress(StoreError):
            await self.refresh()
        self.ctx.start_soon(self._refresh_loop)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, StartRebuild):
            # A refusal (one is running already) is the asker's answer, not a crash.
            try:
                return await self._start(message.options)
            except DomainError as refused:
                return Failure(refused)
        raise UnknownMessage(self.ctx.path, message, (StartRebuild,))

    async def refresh(self) -> None:
        service = self._service
        await service.measure()
        service.rebuilds = await latest_rebuilds(service.store)

    async def _refresh_loop(self) -> None:
        while True:
            await trio.sleep(self._service.settings.refresh_interval)
            try:
                await self.refresh()
            except StoreError as exc:  # the store restarts: keep the last view, try again
                logger.debug("search monitor: %s", exc)

    async def _start(self, options: RebuildOptions) -> RebuildProgress:
        if self._running is not None:
            raise RebuildRunning("this node is running a rebuild already")
        service = self._service
        store = service.store
        rebuilder = Rebuilder(
            store,
            service.projector(store.backend),
            on_batch=lambda _: service.pages.invalidate_all(),
        )
        rebuild_id = await rebuilder.start(options)
        scope = trio.CancelScope()
        self._running = scope

        async def run() -> None:
            try:
                with scope:
                    await rebuilder.run(options, rebuild_id)
            except Exception:
                logger.exception("search: rebuild %d failed; run it again to resume", rebuild_id)
                await store.execute(
                    "UPDATE search_rebuilds SET error = $1 WHERE id = $2",
                    "failed; run the rebuild again to resume",
                    rebuild_id,
                )
            finally:
                self._running = None
                with contextlib.suppress(StoreError):
                    await self.refresh()

        self.ctx.start_soon(run)
        return await rebuilder.progress(rebuild_id)
