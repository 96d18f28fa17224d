"""What a plugin declares: its metadata, the capabilities it asks for, its limits, its hooks.

::

    class Hello(Plugin):
        metadata = Metadata("hello", "1.0.0", api="^1.0", description="greets")
        capabilities = Capabilities(subscribe=("content.node.*",), publish=("hello.greeted",),
                                    routes=True, storage="hello")
        isolation = "process"

        def module(self) -> Module:
            return Module(
                name="hello",
                routes=lambda: (Endpoint("GET", "/greeting", self.greet, "Say hello"),),
                subscriptions=(Subscription("content.node.*", lambda _: self.on_node),),
            )

        async def initialize(self, ctx: PluginContext) -> None:
            self.ctx = ctx

A plugin contributes a :class:`~triotok.modules.Module` like any built-in
module (actors, subscriptions, health checks, migrations for inline plugins);
the only difference is that its ``routes`` are :class:`Endpoint`\\ s, mounted
under ``/api/plugins/<name>/`` with the permissions ``plugin.<name>:<action>``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .._exceptions import InvalidConfig
from .._util import positive_int, seconds
from ..modules import ACTIONS, Module
from ._version import Version, VersionRange

if TYPE_CHECKING:
    from ._context import PluginContext

__all__ = (
    "NAME_PATTERN",
    "Capabilities",
    "Endpoint",
    "HttpReply",
    "Isolation",
    "Limits",
    "Metadata",
    "Plugin",
    "PluginRequest",
    "PluginResponse",
)

#: Plugin names: lowercase words joined by ``-``, up to 64 characters.
NAME_PATTERN = r"[a-z][a-z0-9-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
#: Storage namespaces, outbound hosts and event-type patterns (the HTTP models use them too).
NAMESPACE_PATTERN = r"[a-z][a-z0-9_-]{0,63}"
HOST_PATTERN = (
    r"(\*|(\*\.)?[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*)"
)
EVENT_PATTERN = r"[a-z0-9_*?]+(\.[a-z0-9_*?]+)*"
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_HOST = re.compile(HOST_PATTERN)
_ENDPOINT_PATH = re.compile(r"(/([a-z0-9][a-z0-9._-]{0,63}|<[a-z][a-z0-9_]{0,31}>)){0,8}")
#: Names a plugin may not take: paths of the plugins' own subtree.
RESERVED_NAMES = frozenset({"manager"})

Isolation = Literal["inline", "process"]


@dataclass(frozen=True, slots=True)
class Metadata:
    """Who the plugin is: ``name``, its own ``version`` (semver), the plugin-API range ``api``."""

    name: str
    version: str
    api: str
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidConfig("name", f"{str(self.name)[:70]!r} must match {NAME_PATTERN}")
        if self.name in RESERVED_NAMES:
            raise InvalidConfig("name", f"{self.name!r} is reserved")
        Version.parse(self.version, full=True)
        VersionRange.parse(self.api)
        if not isinstance(self.description, str) or len(self.description) > 500:
            raise InvalidConfig("description", "must be text of at most 500 characters")

    @property
    def api_range(self) -> VersionRange:
        return VersionRange.parse(self.api)


# The event bus's pattern syntax (``triotok.transport``): dotted lowercase names
# with ``*`` and ``?`` wildcards, where ``*`` also matches dots.
_EVENT_PATTERN = re.compile(EVENT_PATTERN)


def _pattern(name: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 200 or not _EVENT_PATTERN.fullmatch(value):
        raise InvalidConfig(name, f"{str(value)[:60]!r} is not an event-type pattern")
    return value


def _patterns(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise InvalidConfig(name, "must be a tuple of event-type patterns")
    return tuple(_pattern(name, v) for v in values)


def event_matches(pattern: str, event_type: str) -> bool:
    """The bus's rule: ``event_type`` matches ``pattern`` (fnmatch; ``*`` matches dots too)."""
    return pattern == "*" or fnmatchcase(event_type, pattern)


def _covers(patterns: tuple[str, ...], pattern: str) -> bool:
    """Whether every event type ``pattern`` matches is matched by one of ``patterns``.

    Decided on the text: ``"content.*"`` covers ``"content.node.*"`` and
    ``"content.node.created"``; a pattern covers itself; ``"*"`` covers all.
    """
    return any(p == "*" or p == pattern or fnmatchcase(pattern, p) for p in patterns)


def host_allowed(hosts: tuple[str, ...], host: str) -> bool:
    """Whether ``host`` (a lowercase name or IP) is one of ``hosts`` (wildcards ``*``, ``*.x``)."""
    host = host.lower().rstrip(".")
    for allowed in hosts:
        if allowed == "*" or allowed == host:
            return True
        if allowed.startswith("*.") and host.endswith(allowed[1:]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a plugin asks for (its declaration) or is granted (an operator's enable).

    * ``subscribe``: event-type patterns it may receive;
    * ``publish``: event-type patterns it may publish;
    * ``routes``: whether it may serve routes under ``/api/plugins/<name>/``;
    * ``hosts``: hosts it may call over HTTP (``"*.example.com"``; ``"*"``: any);
    * ``storage``: its storage namespace (``None``: no storage).
    """

    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    routes: bool = False
    hosts: tuple[str, ...] = ()
    storage: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscribe", _patterns("subscribe", self.subscribe))
        object.__setattr__(self, "publish", _patterns("publish", self.publish))
        if not isinstance(self.routes, bool):
            raise InvalidConfig("routes", "must be true or false")
        hosts: Any = self.hosts  # checked at run time: callers may pass anything
        if isinstance(hosts, str) or not isinstance(hosts, tuple | list):
            raise InvalidConfig("hosts", "must be a tuple of host names")
        for host in hosts:
            if not isinstance(host, str) or len(host) > 253 or not _HOST.fullmatch(host):
                raise InvalidConfig("hosts", f"{str(host)[:60]!r} is not a host name")
        object.__setattr__(self, "hosts", tuple(hosts))
        if self.storage is not None and (
            not isinstance(self.storage, str) or not _NAMESPACE.fullmatch(self.storage)
        ):
            raise InvalidConfig("storage", f"{self.storage!r} must match {_NAMESPACE.pattern}")

    # ---------------------------------------------------------------- checks

    def may_publish(self, event_type: str) -> bool:
        return _covers(self.publish, event_type)

    def may_subscribe(self, pattern: str) -> bool:
        return _covers(self.subscribe, pattern)

    def may_call(self, host: str) -> bool:
        return host_allowed(self.hosts, host)

    def within(self, requested: Capabilities) -> list[str]:
        """What this grant gives beyond ``requested`` (empty: it is a subset)."""
        beyond = [f"subscribe {p!r}" for p in self.subscribe if not requested.may_subscribe(p)]
        beyond += [f"publish {p!r}" for p in self.publish if not _covers(requested.publish, p)]
        if self.routes and not requested.routes:
            beyond.append("routes")
        for host in self.hosts:
            wild = host == "*" or host.startswith("*.")
            if (wild and host not in requested.hosts and "*" not in requested.hosts) or (
                not wild and not requested.may_call(host)
            ):
                beyond.append(f"host {host!r}")
        if self.storage is not None and self.storage != requested.storage:
            beyond.append(f"storage {self.storage!r}")
        return beyond

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscribe": list(self.subscribe),
            "publish": list(self.publish),
            "routes": self.routes,
            "hosts": list(self.hosts),
            "storage": self.storage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        return cls(
            subscribe=tuple(data.get("subscribe", ())),
            publish=tuple(data.get("publish", ())),
            routes=bool(data.get("routes", False)),
            hosts=tuple(data.get("hosts", ())),
            storage=data.get("storage"),
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of a plugin.

    ``deadline`` bounds every call into the plugin (an event, a request,
    ``initialize``) in both isolation modes. The others apply to a
    process-isolated plugin's child: ``memory_mb`` of address space beyond
    what the interpreter holds when the plugin is loaded, ``cpu_seconds`` of
    CPU time over the life of the process, ``open_files`` descriptors.
    """

    deadline: float = 5.0
    memory_mb: int = 256
    cpu_seconds: int = 600
    open_files: int = 64
    start_timeout: float = 10.0

    def __post_init__(self) -> None:
        seconds("deadline", self.deadline, allow_zero=False)
        seconds("start_timeout", self.start_timeout, allow_zero=False)
        positive_int("memory_mb", self.memory_mb)
        positive_int("cpu_seconds", self.cpu_seconds)
        positive_int("open_files", self.open_files)
        if self.open_files < 16:
            raise InvalidConfig("open_files", "must be at least 16 (the runtime's own pipes)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "deadline": self.deadline,
            "memory_mb": self.memory_mb,
            "cpu_seconds": self.cpu_seconds,
            "open_files": self.open_files,
            "start_timeout": self.start_timeout,
        }


class Plugin:
    """Subclass it: declare ``metadata`` (and ``capabilities``, ``isolation``, ``limits``).

    An instance is made for every run of the plugin (each enable or
    restart); :meth:`initialize` runs before anything else of it, and
    :meth:`shutdown` last. Both run where the plugin runs: in its child
    process with ``isolation = "process"`` (the default, for third-party
    code), in the platform's process with ``"inline"`` (trusted first-party
    plugins). Either way every call into it goes through its circuit breaker
    and its per-call deadline.
    """

    metadata: ClassVar[Metadata]
    capabilities: ClassVar[Capabilities] = Capabilities()
    isolation: ClassVar[Isolation] = "process"
    limits: ClassVar[Limits] = Limits()

    def module(self) -> Module:
        """The Module this plugin contributes (its name is the plugin's name)."""
        return Module(name=self.metadata.name, description=self.metadata.description)

    async def initialize(self, ctx: PluginContext) -> None:
        """Called once per run, before any event or request reaches the plugin."""

    async def shutdown(self) -> None:
        """Called when the plugin stops (disabled, restarted, or the platform stops)."""


# ------------------------------------------------------------------ routes


@dataclass(frozen=True, slots=True)
class PluginRequest:
    """One HTTP request to a plugin's endpoint, as the plugin sees it.

    ``body`` and ``query`` are instances of the endpoint's msgspec Structs
    (validated by the platform), else the decoded JSON body and the query
    parameters as text. ``tenant`` is the caller's tenant, ``principal`` the
    audit log's "who" (``key:<id>``).
    """

    method: str
    path: str
    params: Mapping[str, str]
    query: Any
    body: Any
    tenant: str
    principal: str
    role: str
    request_id: str


@dataclass(frozen=True, slots=True)
class PluginResponse:
    """A handler's answer when it needs another status or headers (else return the body)."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[PluginRequest], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route of a plugin, relative to ``/api/plugins/<name>``.

    ``path`` is ``""`` or ``/segment/<param>/...``; ``action`` (one of
    ``create``, ``read``, ``update``, ``delete``, ``admin``) makes its
    permission ``plugin.<name>:<action>``. ``body``, ``query`` and
    ``response`` are msgspec types as for a module's routes; they are
    validated by the platform and documented in ``/openapi.json``.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    action: str = "read"
    status: int = 200
    body: Any = None
    query: Any = None
    response: Any = None
    errors: tuple[int, ...] = ()
    operation_id: str = ""

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise InvalidConfig("method", f"{self.method!r} is not GET, POST, PUT, PATCH or DELETE")
        if not isinstance(self.path, str) or not _ENDPOINT_PATH.fullmatch(self.path):
            raise InvalidConfig("path", f"{str(self.path)[:80]!r} is not a relative endpoint path")
        if self.action not in ACTIONS:
            raise InvalidConfig("action", f"{self.action!r} is not one of {', '.join(ACTIONS)}")
        if not callable(self.handler):
            raise InvalidConfig("handler", "must be an async function of a PluginRequest")

    @property
    def key(self) -> str:
        """``"GET /items/<item_id>"``: identifies the endpoint across the process boundary."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The answer to a plugin's outbound HTTP request (``ctx.http``)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)
