"""The modes module: the node's service mode, computed from health signals, and its override.

Declared as :data:`MODES`: the ``service_mode_override`` and ``service_nodes``
tables, ``/system/mode`` (read; set and lift the operator's override), and the
monitor actor ``/app/mode`` that samples the signals (the store's breakers and
probes, the outbox lag, dead letters, the tree's breakers, the modules' health
checks) and keeps ``ctx.mode`` (a :class:`~triotok.resilience.ModeBoard`)
current. The HTTP gate reads that board on every request; see
docs/reference/degradation.md and docs/howto/operate-through-an-outage.md.

Settings (``settings_of={"modes": {...}}``): ``store_down`` (``read_only`` or
``offline``), ``interval``, ``checks_interval``, ``heartbeat_interval``,
``override_refresh`` (seconds), ``node_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ..._util import fixup_module_metadata
from ...resilience import ModePolicy, ServiceMode
from ...store import default_node_id
from ...supervision import ChildSpec
from .._context import ModuleContext
from .._module import HealthCheck, HealthReport, Module
from ._control import ModeControl as ModeControl
from ._monitor import ModeMonitor as ModeMonitor
from ._monitor import Sample as Sample
from ._schema import SCHEMA

# The event payloads (``triotok.modules.modes._events``: ModeOverrideSet,
# ModeOverrideCleared, ModeChanged) stay out of the package's public names: the
# schema registry resolves their annotations in the module that defines them.

__all__ = (
    "MODES",
    "ModeControl",
    "ModeMonitor",
    "Sample",
)


def _routes() -> Sequence[Any]:
    from ._routes import ROUTES

    return ROUTES


def _setup(ctx: ModuleContext) -> None:
    settings = ctx.settings
    policy = ModePolicy(store_down=ServiceMode(str(settings.get("store_down", "read_only"))))
    node_id = str(settings.get("node_id") or f"{default_node_id()}:{uuid.uuid4().hex[:6]}")
    ctx.provide(ModeControl(ctx, policy, node_id))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    settings = ctx.settings
    options = {
        name: float(settings[name])
        for name in ("interval", "checks_interval", "heartbeat_interval", "override_refresh")
        if name in settings
    }
    return [ChildSpec("mode", ModeMonitor, (ctx.get(ModeControl),), options)]


async def _mode(ctx: ModuleContext) -> HealthReport:
    decision = ctx.mode.decision
    detail = {
        "mode": decision.mode.value,
        "computed": decision.computed.value,
        "reasons": [reason.signal for reason in decision.reasons],
        "override": decision.override is not None,
    }
    return HealthReport("ok" if decision.mode is ServiceMode.FULL else "degraded", detail)


#: The modes module's declaration.
MODES = Module(
    name="modes",
    path="mode",
    migrations=SCHEMA.migrations,
    routes=_routes,
    actors=_actors,
    setup=_setup,
    # Not critical: a node that is read-only still answers /ready by its own checks.
    health=(HealthCheck("modes", _mode, critical=False),),
    description="the service mode (full, degraded, read_only, offline) and its override",
)

fixup_module_metadata(__name__, globals())
