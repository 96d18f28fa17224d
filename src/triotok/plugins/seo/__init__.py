"""The ``seo`` plugin: slug suggestions, a description and a reading time for content nodes.

It sees content only through the events it is granted (``content.node.*``):
each time a node is created or changed it analyses every translation
(:mod:`~triotok.plugins.seo._analysis`), keeps the result in its storage
(``node/<id>``, per tenant), publishes ``seo.analyzed``, and serves it at
``GET /api/plugins/seo/nodes/<node_id>``. A deleted node's analysis is
dropped. First-party and trusted: ``isolation = "inline"``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from msgspec import Struct

from ..._util import fixup_module_metadata
from ...modules import Module, Subscription
from ...store import NotFound
from ...transport import Envelope, event
from .. import Capabilities, Endpoint, Metadata, Plugin, PluginContext, PluginRequest
from ._analysis import Analysis as Analysis
from ._analysis import analyse as analyse
from ._analysis import slugify as slugify

__all__ = ("SEO", "Analysis", "Seo", "SeoReport", "analyse", "slugify")


# Event payloads stay out of __all__ (their annotations resolve in this module).
@dataclass(frozen=True, slots=True)
class LocaleAnalysis:
    """One locale's findings inside ``seo.analyzed``."""

    locale: str
    slugs: tuple[str, ...]
    description: str
    words: int
    reading_minutes: int


@event("seo.analyzed")
@dataclass(frozen=True, slots=True)
class Analyzed:
    """The seo plugin analysed version ``version`` of node ``node_id``."""

    node_id: uuid.UUID
    version: int
    locales: tuple[LocaleAnalysis, ...]


class SeoReport(Struct, frozen=True):
    """The seo plugin's findings for a node: per locale, slugs, description, reading time."""

    node_id: str
    version: int
    locales: dict[str, dict[str, Any]]

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "node_id": "5f0c8a52-2f31-4a8e-9f62-8f4b8c1d2e3f",
        "version": 3,
        "locales": {
            "en": {
                "slugs": ["hello-world"],
                "description": "The first post of the demo blog.",
                "words": 7,
                "reading_minutes": 1,
            }
        },
    }


class Seo(Plugin):
    """See the module docstring."""

    metadata = Metadata(
        "seo",
        "1.0.0",
        api="^1.0",
        description="slug suggestions, descriptions and reading times for content nodes",
    )
    capabilities = Capabilities(
        subscribe=("content.node.*",), publish=("seo.analyzed",), routes=True, storage="seo"
    )
    isolation = "inline"

    def module(self) -> Module:
        return Module(
            name="seo",
            routes=lambda: (
                Endpoint(
                    "GET",
                    "/nodes/<node_id>",
                    self.report,
                    "The seo plugin's findings for a content node",
                    response=SeoReport,
                    errors=(404,),
                    operation_id="getNodeReport",
                ),
            ),
            subscriptions=(Subscription("content.node.*", lambda _: self.on_content),),
            description=self.metadata.description,
        )

    async def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    async def on_content(self, envelope: Envelope) -> None:
        data = self.ctx.event_data(envelope)
        if envelope.event_type == "content.node.deleted":
            await self.ctx.storage.delete(f"node/{data['node_id']}")
            return
        node = data.get("node")
        if not isinstance(node, dict):
            return
        results = [
            analyse(t["locale"], t["title"], t["slug"], t["excerpt"], t["body"], t["body_format"])
            for t in node.get("translations", ())
        ]
        node_id, version = str(node["node_id"]), int(node["version"])
        stored = await self.ctx.storage.get(f"node/{node_id}")
        if isinstance(stored, dict) and int(stored.get("version", 0)) > version:
            return  # an older event delivered late: the newer analysis stays
        report = {
            "node_id": node_id,
            "version": version,
            "locales": {r.locale: r.as_dict() for r in results},
        }
        await self.ctx.storage.put(f"node/{node_id}", report)
        locales = tuple(
            LocaleAnalysis(r.locale, r.slugs, r.description, r.words, r.reading_minutes)
            for r in results
        )
        await self.ctx.publish(Analyzed(uuid.UUID(node_id), version, locales), cause=envelope)

    async def report(self, request: PluginRequest) -> Any:
        try:
            node_id = str(uuid.UUID(request.params["node_id"]))
        except ValueError:
            raise NotFound("no such node") from None
        stored = await self.ctx.storage.get(f"node/{node_id}")
        if stored is None:
            raise NotFound("the seo plugin has not analysed this node")
        return stored


#: The plugin class, as ``triotok.app.PLUGINS`` lists it.
SEO = Seo

fixup_module_metadata(__name__, globals())
