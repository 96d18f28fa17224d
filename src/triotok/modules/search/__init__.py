"""The search module: CQRS read models fed by events, full-text search with facets, rebuilds.

Declared as :data:`SEARCH`. It subscribes to ``content.*``, ``product.*`` and
``inventory.*`` in its own consumer group (``search``) and keeps the read
models (``product_index``, ``content_docs``, ``content_index``; see
``_schema``): each event applied once, in the transaction of its inbox
entry, and guarded by the aggregate's version (``_projection``). It serves
``GET /api/products`` and ``GET /api/content/nodes`` from them, and
``GET /api/search`` (``_query``: words, "phrases", prefix*, -exclusions;
ranked, highlighted, faceted). Reads take a write's consistency token
(``min_token``, ``_consistency``). Rebuilds from the write tables are
batched, parallel and checkpointed (``_rebuild``; ``triotok index rebuild``
and ``POST /api/search/rebuilds``); ``/app/modules/search/index`` shows the
lag and the rebuilds in the tree (``_monitor``).

::

    /app/modules/search
      /app/modules/search/index   IndexMonitor: lag, rebuild progress, operator rebuilds
      /app/modules/search/on-1    content.*   -> the projection
      /app/modules/search/on-2    product.*   -> the projection
      /app/modules/search/on-3    inventory.* -> the projection
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec
from ...transport import Envelope
from .._context import ModuleContext
from .._module import Grant, HealthCheck, HealthReport, Module, Subscription
from .._permissions import Permission
from ._consistency import Applied as Applied
from ._consistency import LagReport as LagReport
from ._consistency import has_applied as has_applied
from ._consistency import measure_lag as measure_lag
from ._documents import NodeDoc as NodeDoc
from ._documents import NodeGone as NodeGone
from ._documents import ProductDoc as ProductDoc
from ._documents import StockLevels as StockLevels
from ._documents import TranslationDoc as TranslationDoc
from ._documents import changes_of as changes_of
from ._monitor import IndexMonitor as IndexMonitor
from ._monitor import RebuildStatistics as RebuildStatistics
from ._monitor import StartRebuild as StartRebuild
from ._projection import Projector as Projector
from ._projection import TextConfigs as TextConfigs
from ._query import Clause as Clause
from ._query import InvalidQuery as InvalidQuery
from ._query import Query as Query
from ._query import matches as matches
from ._query import parse_query as parse_query
from ._query import to_fts5 as to_fts5
from ._query import to_tsquery as to_tsquery
from ._reader import SearchReader as SearchReader
from ._reader import SearchRequest as SearchRequest
from ._reader import SearchResult as SearchResult
from ._rebuild import KINDS as KINDS
from ._rebuild import Rebuilder as Rebuilder
from ._rebuild import RebuildOptions as RebuildOptions
from ._rebuild import RebuildProgress as RebuildProgress
from ._rebuild import RebuildRunning as RebuildRunning
from ._rebuild import describe_progress as describe_progress
from ._rebuild import latest_rebuilds as latest_rebuilds
from ._schema import SCHEMA
from ._service import CONSUMER as CONSUMER
from ._service import ProjectionStatistics as ProjectionStatistics
from ._service import SearchService as SearchService
from ._service import SearchSettings as SearchSettings
from ._text import fold as fold
from ._text import plain_text as plain_text
from ._text import words as words

__all__ = (
    "CONSUMER",
    "KINDS",
    "SEARCH",
    "Applied",
    "Clause",
    "IndexMonitor",
    "InvalidQuery",
    "LagReport",
    "NodeDoc",
    "NodeGone",
    "ProductDoc",
    "ProjectionStatistics",
    "Projector",
    "Query",
    "RebuildOptions",
    "RebuildProgress",
    "RebuildRunning",
    "RebuildStatistics",
    "Rebuilder",
    "SearchReader",
    "SearchRequest",
    "SearchResult",
    "SearchService",
    "SearchSettings",
    "StartRebuild",
    "StockLevels",
    "TextConfigs",
    "TranslationDoc",
    "changes_of",
    "describe_progress",
    "fold",
    "has_applied",
    "latest_rebuilds",
    "matches",
    "measure_lag",
    "parse_query",
    "plain_text",
    "to_fts5",
    "to_tsquery",
    "words",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(SearchService(ctx.store, SearchSettings.from_mapping(ctx.settings)))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    return [ChildSpec("index", IndexMonitor, (ctx.get(SearchService),))]


def _project(ctx: ModuleContext) -> Callable[[Envelope], Awaitable[None]]:
    service = ctx.get(SearchService)

    def project(envelope: Envelope) -> Awaitable[None]:
        # Looked up per event, so a probe (the benchmark's) may wrap ``handle``.
        return service.handle(envelope)

    return project


async def _lag(ctx: ModuleContext) -> HealthReport:
    service = ctx.get(SearchService)
    lag = await service.measure()
    detail = {**lag.as_dict(), "max_lag_seconds": service.settings.max_lag_seconds}
    degraded = lag.lag_seconds > service.settings.max_lag_seconds
    return HealthReport("degraded" if degraded else "ok", detail)


_READERS = ("viewer", "editor", "admin")

#: The search module's declaration.
SEARCH = Module(
    name="search",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("search", "read"), _READERS),
        # The public catalogue: active products and published content only.
        Grant(Permission("search", "read"), ("storefront",), restricted=True),
        Grant(Permission("index", "read", "platform"), ("admin",)),
        Grant(Permission("index", "admin", "platform"), ("admin",)),
    ),
    routes=_routes,
    actors=_actors,
    subscriptions=(
        Subscription("content.*", _project),
        Subscription("product.*", _project),
        Subscription("inventory.*", _project),
    ),
    health=(HealthCheck("lag", _lag, critical=False),),
    setup=_setup,
    description="read models fed by events: lists, full-text search with facets, rebuilds",
)

fixup_module_metadata(__name__, globals())
