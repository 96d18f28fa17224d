"""Plugins: a semver-versioned plugin API, discovery, the supervised manager, two real plugins.

The plugin API (version :data:`API_VERSION`; its surface is pinned by
``tests/plugins/test_api_contract.py``)::

    from triotok.modules import Module, Subscription
    from triotok.plugins import Capabilities, Endpoint, Metadata, Plugin, PluginContext

    class Hello(Plugin):
        metadata = Metadata("hello", "1.0.0", api="^1.0", description="greets")
        capabilities = Capabilities(subscribe=("content.node.*",), routes=True, storage="hello")

        def module(self) -> Module:
            return Module(
                name="hello",
                routes=lambda: (Endpoint("GET", "/greeting", self.greet, "Say hello"),),
                subscriptions=(Subscription("content.node.*", lambda _: self.on_node),),
            )

        async def initialize(self, ctx: PluginContext) -> None:
            self.ctx = ctx

        async def on_node(self, envelope):
            await self.ctx.storage.put("last", self.ctx.event_data(envelope))

        async def greet(self, request):
            return {"hello": request.tenant, "last": await self.ctx.storage.get("last")}

Installed packages expose plugins through the entry-point group
``triotok.plugins``; a configured directory adds more. The manager
(``/app/plugins``) runs each enabled plugin as its own supervisor subtree,
in a resource-limited child process (``isolation = "process"``, the
default) or in-process (``"inline"``), behind a circuit breaker and a
per-call deadline, and enforces its grant on every call. See
docs/reference/plugins.md and docs/tutorial/write-a-plugin.md.

A handler answers a client error by raising :class:`InvalidInput` (400),
:class:`NotFound` (404) or :class:`Conflict` (409), re-exported here.
"""

from .._exceptions import Conflict as Conflict
from .._exceptions import InvalidInput as InvalidInput
from .._util import fixup_module_metadata
from ..store import NotFound as NotFound
from ._api import EVENT_PATTERN as EVENT_PATTERN
from ._api import HOST_PATTERN as HOST_PATTERN
from ._api import NAME_PATTERN as NAME_PATTERN
from ._api import NAMESPACE_PATTERN as NAMESPACE_PATTERN
from ._api import Capabilities as Capabilities
from ._api import Endpoint as Endpoint
from ._api import HttpReply as HttpReply
from ._api import Isolation as Isolation
from ._api import Limits as Limits
from ._api import Metadata as Metadata
from ._api import Plugin as Plugin
from ._api import PluginRequest as PluginRequest
from ._api import PluginResponse as PluginResponse
from ._context import PluginContext as PluginContext
from ._context import Scope as Scope
from ._context import Storage as Storage
from ._context import current_scope as current_scope
from ._discovery import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._discovery import Discovered as Discovered
from ._discovery import discover as discover
from ._errors import CapabilityDenied as CapabilityDenied
from ._errors import PluginCrashed as PluginCrashed
from ._errors import PluginError as PluginError
from ._errors import PluginNotFound as PluginNotFound
from ._errors import PluginRefused as PluginRefused
from ._errors import PluginTimeout as PluginTimeout
from ._errors import PluginUnavailable as PluginUnavailable
from ._manager import PluginManager as PluginManager
from ._manager import PluginOptions as PluginOptions
from ._manager import PluginState as PluginState
from ._manager import PluginStatus as PluginStatus
from ._manager import endpoint_path as endpoint_path
from ._version import API_VERSION as API_VERSION
from ._version import Version as Version
from ._version import VersionRange as VersionRange

__all__ = (
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "EVENT_PATTERN",
    "HOST_PATTERN",
    "NAMESPACE_PATTERN",
    "NAME_PATTERN",
    "Capabilities",
    "CapabilityDenied",
    "Conflict",
    "Discovered",
    "Endpoint",
    "HttpReply",
    "InvalidInput",
    "Isolation",
    "Limits",
    "Metadata",
    "NotFound",
    "Plugin",
    "PluginContext",
    "PluginCrashed",
    "PluginError",
    "PluginManager",
    "PluginNotFound",
    "PluginOptions",
    "PluginRefused",
    "PluginRequest",
    "PluginResponse",
    "PluginState",
    "PluginStatus",
    "PluginTimeout",
    "PluginUnavailable",
    "Scope",
    "Storage",
    "Version",
    "VersionRange",
    "current_scope",
    "discover",
    "endpoint_path",
)

fixup_module_metadata(__name__, globals())
