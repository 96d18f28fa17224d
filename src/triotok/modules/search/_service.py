"""The search module's services: the projection's event handler, reads, waits, rebuilds, lag.

One :class:`SearchService` per application (provided by the module's
``setup``); the subscriptions, the routes, the monitor actor and the health
check all use it. It builds its projector and reader for the store's backend
the first time it needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import InvalidConfig, TriotokError
from ...store import Store, StoreHandle, UnitOfWork
from ...transport import Envelope
from ._consistency import Applied, LagReport, has_applied, measure_lag, wait_applied
from ._documents import changes_of
from ._pagecache import PageCache
from ._projection import Projector, TextConfigs
from ._reader import SearchReader
from ._rebuild import RebuildProgress

__all__ = ("CONSUMER", "ProjectionStatistics", "SearchService", "SearchSettings")

logger = logging.getLogger("triotok.search")

#: The inbox consumer (and bus consumer group) of the projection: one per cluster.
CONSUMER = "search"


class _Seen(TriotokError):
    """The search inbox already holds the event: a redelivery, nothing to apply.

    A :class:`~triotok.TriotokError`, so the stores raise it as it is.
    """


def _defer_inbox_row(tx: UnitOfWork, event_id: str) -> None:
    """Queue the search inbox row of ``event_id`` (as ``tx.inbox_seen``, without waiting)."""
    tx.defer(
        "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        CONSUMER,
        event_id,
        datetime.now(UTC),
        expect=1,
        error=_Seen(),
    )


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """The module's settings (``[search]`` in the TOML file; see docs/reference/search.md).

    * ``consistency_wait``: the longest a read with ``min_token`` waits (seconds);
    * ``poll_interval``: how often such a read looks again meanwhile;
    * ``max_lag_seconds``: above this lag ``/health`` reports search degraded;
    * ``refresh_interval``: how often the monitor measures lag and rebuilds;
    * ``page_cache_ttl``: how long a list or search answer is reused on a node
      (0: never; see ``_pagecache``);
    * ``configs``: PostgreSQL text search configurations;
    * ``stream_window``: on L2, seconds over which an event in the stream is
      still awaited by ``min_token`` reads and counted as lag (0 on L1, where
      a delivered event is an applied one; see ``_consistency``).
    """

    consistency_wait: float = 2.0
    poll_interval: float = 0.05
    page_cache_ttl: float = 0.5
    max_lag_seconds: float = 30.0
    refresh_interval: float = 1.0
    stream_window: float = 0.0
    configs: TextConfigs = field(default_factory=TextConfigs)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SearchSettings:
        """From a module's settings mapping (unknown keys refused)."""
        known = {
            "consistency_wait",
            "poll_interval",
            "max_lag_seconds",
            "refresh_interval",
            "page_cache_ttl",
            "stream_window",
        }
        options: dict[str, Any] = {}
        for key, value in values.items():
            if key in known:
                number = float(value)
                if not 0 <= number <= 3600:
                    raise InvalidConfig(key, f"must be from 0 to 3600 seconds, got {value!r}")
                options[key] = number
            elif key == "text_configs":
                options["configs"] = parse_text_configs(value)
            else:
                raise InvalidConfig(key, "is not a setting of the search module")
        return cls(**options)


def parse_text_configs(value: object) -> TextConfigs:
    """``"simple"``-style names per locale from ``"en=english,de=german,*=simple"``.

    ``*`` names the default; ``products`` the configuration of products.
    """
    if isinstance(value, TextConfigs):
        return value
    if not isinstance(value, str):
        raise InvalidConfig("text_configs", "must be 'locale=config,...'")
    default, products, locales = "simple", "simple", {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, config = item.partition("=")
        name, config = name.strip(), config.strip()
        if not sep or not config.replace("_", "").isalnum() or not config.isascii():
            raise InvalidConfig("text_configs", f"{item!r} is not locale=config")
        if name == "*":
            default = config
        elif name == "products":
            products = config
        else:
            locales[name] = config
    return TextConfigs(default, products, locales)


@dataclass(frozen=True, slots=True)
class ProjectionStatistics:
    """The projection as the tree shows it: events applied, skipped, failed; the lag."""

    applied: int
    duplicates: int
    failed: int
    applied_position: int | None
    head_position: int | None
    lag_events: int | None
    lag_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchService:
    """What the module's declarations share (see the module docstring)."""

    def __init__(self, store: StoreHandle, settings: SearchSettings | None = None) -> None:
        self._store = store
        self.settings = settings or SearchSettings()
        self.applied = Applied()
        self.pages = PageCache(ttl=self.settings.page_cache_ttl)
        self._projectors: dict[str, Projector] = {}
        self._readers: dict[str, SearchReader] = {}
        self.duplicates = 0
        self.failed = 0
        self.lag: LagReport | None = None
        #: The newest rebuilds as last read from the store (the monitor refreshes it).
        self.rebuilds: list[RebuildProgress] = []
        # Per tenant, the highest position found applied: a token at or below it
        # needs no query (the watermark only moves forward).
        self._applied_up_to: dict[str, int] = {}

    @property
    def store(self) -> Store:
        return self._store.store

    def projector(self, backend: str | None = None) -> Projector:
        backend = backend or self.store.backend
        if backend not in self._projectors:
            self._projectors[backend] = Projector(backend, self.settings.configs)  # type: ignore[arg-type]  # a Backend
        return self._projectors[backend]

    def reader(self, backend: str | None = None) -> SearchReader:
        backend = backend or self.store.backend
        if backend not in self._readers:
            self._readers[backend] = SearchReader(backend, self.settings.configs)
        return self._readers[backend]

    # ------------------------------------------------------------------ the projection

    async def handle(self, envelope: Envelope) -> None:
        """Apply one event once: its inbox entry and its rows commit together.

        A raise rolls both back; the bus retries the event, then dead-letters it.
        """
        store = self.store
        changes = changes_of(envelope)
        first = True
        try:
            async with store.transaction() as tx:
                if changes:
                    # The inbox row rides on the projection's first round trip,
                    # which raises _Seen (and rolls back) if it was there.
                    _defer_inbox_row(tx, str(envelope.id))
                    await self.projector(store.backend).apply(tx, changes)
                else:
                    first = await tx.inbox_seen(CONSUMER, str(envelope.id))
        except _Seen:
            first = False
        except Exception:
            self.failed += 1
            logger.exception("search: could not apply %s %s", envelope.event_type, envelope.id)
            raise
        if not first:
            self.duplicates += 1
        elif changes and envelope.tenant_id is not None:
            self.pages.invalidate(envelope.tenant_id)
        self.applied.notify()

    def statistics(self) -> ProjectionStatistics:
        lag = self.lag
        return ProjectionStatistics(
            applied=self.applied.count - self.duplicates,
            duplicates=self.duplicates,
            failed=self.failed,
            applied_position=None if lag is None else lag.applied_position,
            head_position=None if lag is None else lag.head_position,
            lag_events=None if lag is None else lag.lag_events,
            lag_seconds=None if lag is None else lag.lag_seconds,
        )

    # ------------------------------------------------------------------ consistency and lag

    async def wait_for(self, tenant_id: str, token: int) -> bool:
        """Whether the index applied ``token`` for ``tenant_id`` within the bounded wait."""
        if token <= self._applied_up_to.get(tenant_id, 0):
            return True
        store = self.store

        async def check() -> bool:
            if token <= self._applied_up_to.get(tenant_id, 0):
                return True
            window = self.settings.stream_window
            if not await has_applied(store, CONSUMER, tenant_id, token, stream_window=window):
                return False
            if token > self._applied_up_to.get(tenant_id, 0):
                if len(self._applied_up_to) >= 10_000:
                    self._applied_up_to.clear()  # bounded: it is only a shortcut
                self._applied_up_to[tenant_id] = token
            return True

        return await wait_applied(
            check,
            self.applied,
            within=self.settings.consistency_wait,
            poll_interval=self.settings.poll_interval,
        )

    async def measure(self) -> LagReport:
        self.lag = await measure_lag(
            self.store, CONSUMER, stream_window=self.settings.stream_window
        )
        return self.lag
