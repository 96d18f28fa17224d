"""The Module contract: one declaration says everything the platform needs to run a module.

A module is one folder whose package exports a :class:`Module`. The
composition root (``triotok.app``) takes a tuple of them; nothing else in the
platform lists a module. From the declaration the platform

* applies its ``migrations`` (tracked per module as ``(module, version)``),
* grants its ``permissions`` to roles,
* serves its ``routes`` (through the same RBAC, problem mapping and OpenAPI),
* starts its ``actors`` under ``/app/modules/<name>`` (or at the top-level
  ``path`` it names, e.g. ``/app/tenants``),
* subscribes its ``subscriptions`` on the event bus, in its consumer group,
* and reads its ``health`` checks for ``/health`` and ``/ready``.

::

    NOTES = Module(
        name="notes",
        migrations=(Migration(1, "notes", sqlite=(...,), postgresql=(...,)),),
        permissions=(Grant(Permission("notes", "read"), roles=("viewer", "editor", "admin")),),
        routes=_routes,                 # () -> Sequence[Route], imported lazily
        actors=lambda ctx: [ChildSpec("counter", Counter, (ctx.store,))],
        subscriptions=(Subscription("tenant.*", _on_tenant_event),),
    )

Invariants: module names are unique in an application and match
``[a-z][a-z0-9_-]{0,63}``; a module never imports another module; only its
own routes file imports ``triotok.http``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import trio

from .._exceptions import InvalidConfig, TriotokError
from ..store import Migration, Schema
from ..supervision import ChildSpec
from ..transport import Envelope
from ._permissions import Permission

if TYPE_CHECKING:
    from ._context import ModuleContext

__all__ = ("Grant", "HealthCheck", "HealthChecks", "HealthReport", "Module", "Subscription")

MODULE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Grant:
    """``permission`` and the roles that get it (roles are sets of permissions).

    A ``restricted`` grant gives the permission over a subset only, which the
    module defines for its resource and its routes enforce (``Call.restricted``):
    the public catalogue (active products, published content), or what the
    caller's own key made (the orders it placed). A role granted the same
    permission unrestricted too has it unrestricted.
    """

    permission: Permission
    roles: tuple[str, ...]
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class Subscription:
    """Handle events matching ``pattern`` (fnmatch) in the module's consumer group.

    ``handler(ctx)`` builds the handler once the context exists; ``group``
    defaults to the module's name, so each event is handled once per module
    across all nodes.
    """

    pattern: str
    handler: Callable[[ModuleContext], Callable[[Envelope], Awaitable[None]]]
    group: str | None = None
    ordered: bool = True


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One check's verdict: ``ok``, ``degraded`` (serving) or ``down`` (not ready)."""

    status: Literal["ok", "degraded", "down"]
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named check; ``critical`` checks that are ``down`` make ``/ready`` answer 503."""

    name: str
    check: Callable[[ModuleContext], Awaitable[HealthReport]]
    critical: bool = True


_REPORTED = {"ok": "up", "degraded": "degraded", "down": "down"}


class HealthChecks:
    """Every module's declared health checks, run together (``/health``, ``/ready``, ``/app/mode``).

    The composition root provides one (``ctx.get(HealthChecks)``); a check
    that raises or takes longer than ``timeout`` seconds counts as ``down``.
    """

    def __init__(self, modules: Iterable[Module], *, timeout: float = 1.0) -> None:
        self.checks: tuple[tuple[str, HealthCheck], ...] = tuple(
            (module.name if check.name == module.name else f"{module.name}.{check.name}", check)
            for module in modules
            for check in module.health
        )
        self.timeout = timeout

    async def run(self, ctx: ModuleContext) -> tuple[bool, dict[str, Any]]:
        """``(no critical check is down, {name: {"status": up|degraded|down, ...detail}})``."""
        ok = True
        results: dict[str, Any] = {}
        for name, check in self.checks:
            try:
                with trio.fail_after(self.timeout):
                    report = await check.check(ctx)
            except (TriotokError, trio.TooSlowError) as exc:
                code = exc.code if isinstance(exc, TriotokError) else "timeout"
                results[name] = {"status": "down", "error": code}
                ok = ok and not check.critical
                continue
            results[name] = {"status": _REPORTED[report.status], **report.detail}
            if report.status == "down" and check.critical:
                ok = False
        return ok, results


@dataclass(frozen=True)
class Module:
    """Everything the platform needs to run one module (see the module docstring)."""

    name: str
    migrations: tuple[Migration, ...] = ()
    permissions: tuple[Grant, ...] = ()
    routes: Callable[[], Sequence[Any]] | None = None
    actors: Callable[[ModuleContext], Sequence[ChildSpec]] | None = None
    #: A top-level path (``"tenants"`` is ``/app/tenants``) for a module with
    #: exactly one actor, where the architecture names one; else the actors
    #: live under ``/app/modules/<name>``.
    path: str | None = None
    subscriptions: tuple[Subscription, ...] = ()
    health: tuple[HealthCheck, ...] = ()
    #: Runs once per application start, before any actor: provide the
    #: module's services (repositories) with ``ctx.provide(...)``.
    setup: Callable[[ModuleContext], None] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not MODULE_NAME.fullmatch(self.name):
            raise InvalidConfig("name", f"{self.name!r} must match {MODULE_NAME.pattern}")
        if self.path is not None and not MODULE_NAME.fullmatch(self.path):
            raise InvalidConfig("path", f"{self.path!r} must be one path segment")
        Schema(self.name, self.migrations)  # validates numbering and dialects

    @property
    def schema(self) -> Schema:
        return Schema(self.name, self.migrations)

    @property
    def actor_path(self) -> str:
        """Where the module's actors live in the application tree."""
        return f"/app/{self.path}" if self.path is not None else f"/app/modules/{self.name}"

    def route_table(self) -> tuple[Any, ...]:
        return tuple(self.routes()) if self.routes is not None else ()


def check_modules(modules: Sequence[Module]) -> None:
    """Refuse a composition with a module named twice or two modules on one path."""
    names: set[str] = set()
    paths: set[str] = set()
    for module in modules:
        if module.name in names:
            raise InvalidConfig("modules", f"module {module.name!r} is given twice")
        names.add(module.name)
        if module.path is not None:
            if module.path in paths or module.path in _RESERVED_PATHS:
                raise InvalidConfig("modules", f"path /app/{module.path} is taken")
            paths.add(module.path)


_RESERVED_PATHS = frozenset({"store", "transport", "modules", "http", "plugins"})
