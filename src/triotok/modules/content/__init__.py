"""The content module: the nodes of the headless CMS, each an entity actor.

Declared as :data:`CONTENT`: the ``content_*`` tables, ``/api/content/nodes``,
the ``content:*`` permissions (publishing needs ``content:admin``), and the
entities region ``/app/modules/content/nodes`` whose entities are the nodes
(``(tenant_id, node_id)`` keys, activated on their first command, passivated
when idle). A node's lifecycle is :mod:`~triotok.modules.content._lifecycle`::

    draft -> published -> archived;  published -> draft;  archived -> draft
    delete from draft or archived
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...supervision import ChildSpec, Entities
from .._context import ModuleContext
from .._module import Grant, Module
from .._permissions import Permission
from ._entity import (
    CreateNode as CreateNode,
)
from ._entity import (
    GetNode as GetNode,
)
from ._entity import (
    NodeEntity as NodeEntity,
)
from ._entity import (
    TransitionNode as TransitionNode,
)
from ._entity import (
    UpdateNode as UpdateNode,
)
from ._entity import (
    VersionMismatch as VersionMismatch,
)
from ._entity import (
    Who as Who,
)
from ._lifecycle import TRANSITIONS as TRANSITIONS
from ._lifecycle import Command as Command
from ._lifecycle import InvalidTransition as InvalidTransition
from ._lifecycle import Status as Status
from ._lifecycle import allowed as allowed
from ._lifecycle import apply as apply
from ._model import ContentNode as ContentNode
from ._model import Translation as Translation
from ._repository import ContentRepository as ContentRepository
from ._repository import SlugTaken as SlugTaken
from ._repository import StaleNode as StaleNode
from ._schema import SCHEMA
from ._service import REGION_PATH as REGION_PATH
from ._service import ContentService as ContentService

__all__ = (
    "CONTENT",
    "REGION_PATH",
    "TRANSITIONS",
    "Command",
    "ContentNode",
    "ContentRepository",
    "ContentService",
    "CreateNode",
    "GetNode",
    "InvalidTransition",
    "NodeEntity",
    "SlugTaken",
    "StaleNode",
    "Status",
    "TransitionNode",
    "Translation",
    "UpdateNode",
    "VersionMismatch",
    "Who",
    "allowed",
    "apply",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    ctx.provide(ContentService(ctx.system, ctx.store, ContentRepository()))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    service = ctx.get(ContentService)

    def entity(key: tuple[str, str]) -> NodeEntity:
        return NodeEntity(key, ctx.store, service.repository)

    region = Entities(
        "nodes",
        factory=entity,
        idle=float(ctx.settings.get("idle", 120.0)),
        max_active=int(ctx.settings.get("max_active", 10_000)),
    )
    return [ChildSpec("nodes", region, shutdown=None)]


_EDITORS = ("editor", "admin")

#: The content module's declaration.
CONTENT = Module(
    name="content",
    migrations=SCHEMA.migrations,
    permissions=(
        Grant(Permission("content", "read"), ("viewer", "editor", "admin")),
        # The shop front end reads what is public: published nodes only.
        Grant(Permission("content", "read"), ("storefront",), restricted=True),
        Grant(Permission("content", "create"), _EDITORS),
        Grant(Permission("content", "update"), _EDITORS),
        Grant(Permission("content", "delete"), _EDITORS),
        Grant(Permission("content", "admin"), ("admin",)),
    ),
    routes=_routes,
    actors=_actors,
    setup=_setup,
    description="content nodes of the headless CMS: one entity actor per node",
)

fixup_module_metadata(__name__, globals())
