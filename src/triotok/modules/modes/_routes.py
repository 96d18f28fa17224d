"""``/system/mode``: read this node's service mode; set or lift the operator's override.

Control-plane routes (``/system/...``): the service mode never refuses them.
Setting and lifting need ``system:admin`` of the operator tenant and are
audited; the change reaches every node through the outbox. While the store
cannot take it, the override holds on the node that answered (``scope:
"node"``) and the audit line goes to the log.
"""

from __future__ import annotations

from typing import Any

import trio

from ..._exceptions import StoreUnavailable
from ...http import Call, Reply, Route
from ...resilience import ServiceMode
from .._permissions import Permission
from . import _models as models
from ._control import ModeControl

__all__ = ("ROUTES",)


def _control(call: Call) -> ModeControl:
    return call.services.context.get(ModeControl)


async def _view(control: ModeControl) -> dict[str, Any]:
    board = control.board
    now = trio.current_time()
    try:
        nodes = await control.nodes()
    except StoreUnavailable:
        nodes = []
    stats = board.statistics()
    return {
        "node": control.node_id,
        **board.decision.as_dict(now),
        "scope": "node" if control.local_override else "cluster",
        "since_changes": stats.changes,
        "history": [change.as_dict() for change in reversed(board.history)],
        "nodes": nodes,
        "statistics": stats.as_dict(),
    }


async def get_mode(call: Call) -> dict[str, Any]:
    return await _view(_control(call))


async def set_mode(call: Call) -> Reply:
    body: models.ModeOverrideRequest = call.body
    control = _control(call)
    assert call.key is not None
    await control.set_override(
        ServiceMode(body.mode),
        body.reason,
        actor=call.principal,
        tenant_id=call.key.tenant_id,
        expires_in=body.expires_in,
    )
    return Reply(await _view(control), 200)


async def clear_mode(call: Call) -> Reply:
    control = _control(call)
    assert call.key is not None
    await control.clear_override(actor=call.principal, tenant_id=call.key.tenant_id)
    return Reply(await _view(control), 200)


ROUTES = (
    Route(
        "GET",
        "/system/mode",
        get_mode,
        "This node's service mode, why, the operator's override and every node's mode",
        "system",
        Permission("system", "read", "platform"),
        operation_id="getServiceMode",
        response=models.ServiceModeView,
    ),
    Route(
        "POST",
        "/system/mode",
        set_mode,
        "Override the service mode of every node (mode, reason, expires_in seconds)",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="setServiceMode",
        body=models.ModeOverrideRequest,
        response=models.ServiceModeView,
    ),
    Route(
        "DELETE",
        "/system/mode",
        clear_mode,
        "End the operator's override: every node goes back to the mode its signals imply",
        "system",
        Permission("system", "admin", "platform"),
        operation_id="clearServiceMode",
        response=models.ServiceModeView,
    ),
)
