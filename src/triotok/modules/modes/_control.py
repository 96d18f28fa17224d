"""The node's service mode: signals in, a decision out, the override, its rows and its events.

:class:`ModeControl` is shared by the monitor actor (``/app/mode``, which
samples the signals every ``interval`` seconds) and the ``/system/mode``
routes (which set and lift the operator's override). Every decision goes to
the context's :class:`~triotok.resilience.ModeBoard`, which the HTTP gate
reads; every change of mode is logged, kept in the board's history and
published as ``system.mode_changed`` on the node's local event feed.

Invariants:

* the board only ever holds a decision of :meth:`ModePolicy.decide` over the
  latest signals and the current override, so what ``/system/mode`` says and
  what the gate enforces cannot differ;
* the override is the store's row (one, cluster-wide) as of the last load or
  change event, or, while the store cannot take it, this node's own until
  the store returns (``scope: "node"``);
* an expired override is ignored by every node at the same wall-clock time
  (expiry travels as a UTC timestamp, each node converts it to its clock).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from ..._exceptions import StoreUnavailable
from ...resilience import ModeDecision, ModeOverride, ModePolicy, ModeSignals, ServiceMode
from ...store import UnitOfWork, parse_timestamp
from ...transport import Envelope
from .._audit import AuditEntry, record
from .._context import ModuleContext
from ._events import ModeChanged, ModeOverrideCleared, ModeOverrideSet

__all__ = ("ModeControl",)

logger = logging.getLogger("triotok.modes")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ModeControl:
    """See the module docstring. ``node_id`` names this node in ``service_nodes``."""

    def __init__(self, ctx: ModuleContext, policy: ModePolicy, node_id: str) -> None:
        self.ctx = ctx
        self.policy = policy
        self.node_id = node_id
        self.board = ctx.mode
        self.signals = ModeSignals()
        self.override: ModeOverride | None = None
        #: The override lives on this node only (the store could not take it).
        self.local_override = False
        self.retry_after: float | None = None
        self._published: list[ModeChanged] = []

    # ------------------------------------------------------------------ deciding

    def decide(self) -> ModeDecision:
        """Apply the policy to the latest signals and override; publish the result."""
        now = trio.current_time()
        override = self.override
        if override is not None and not override.active(now):
            logger.info("the operator's override (%s) expired", override.mode.value)
            self.override = override = None
            self.local_override = False
        decision = self.policy.decide(self.signals, override, now, retry_after=self.retry_after)
        change = self.board.apply(decision, now=now, wall=_iso(datetime.now(UTC)))
        if change is not None:
            names = [reason.signal for reason in change.reasons]
            log = logger.warning if change.to_mode.severity else logger.info
            log(
                "service mode %s -> %s (%s)",
                change.from_mode.value,
                change.to_mode.value,
                ", ".join(names) or "all signals clear",
            )
            self._published.append(
                ModeChanged(
                    self.node_id,
                    change.from_mode.value,
                    change.to_mode.value,
                    names,
                    [reason.detail for reason in change.reasons],
                )
            )
        return decision

    async def publish_changes(self) -> None:
        """Publish the pending ``system.mode_changed`` events on the local feed."""
        pending, self._published = self._published, []
        for payload in pending:
            try:
                await self.ctx.events.publish(Envelope.new(payload, actor_id="/app/mode"))
            except Exception:
                logger.exception("publishing a mode change failed")

    # ------------------------------------------------------------------ the override

    def _from_row_values(
        self, mode: str, reason: str, actor: str, expires_at: datetime | None
    ) -> ModeOverride:
        deadline = None
        wall = None
        if expires_at is not None:
            remaining = (expires_at - datetime.now(UTC)).total_seconds()
            deadline = trio.current_time() + remaining
            wall = _iso(expires_at)
        return ModeOverride(ServiceMode(mode), reason, actor, deadline, wall)

    async def load_override(self) -> None:
        """Read the override row (the store must be readable)."""
        row = await self.ctx.store.store.fetchrow(
            "SELECT mode, reason, actor, expires_at FROM service_mode_override WHERE id = 1"
        )
        if self.local_override:
            return  # this node's own choice stands until the store takes one
        if row is None:
            self.override = None
            return
        self.override = self._from_row_values(
            str(row["mode"]),
            str(row["reason"]),
            str(row["actor"]),
            parse_timestamp(row["expires_at"]),
        )

    async def on_event(self, envelope: Envelope) -> None:
        """Apply an override change from any node (the local feed of committed events)."""
        payload = envelope.payload
        if isinstance(payload, ModeOverrideSet):
            self.local_override = False
            self.override = self._from_row_values(
                payload.mode, payload.reason, payload.actor, payload.expires_at
            )
        elif isinstance(payload, ModeOverrideCleared):
            self.local_override = False
            self.override = None
        else:
            return
        self.decide()
        await self.publish_changes()

    async def set_override(
        self,
        mode: ServiceMode,
        reason: str,
        *,
        actor: str,
        tenant_id: str | None,
        expires_in: float | None,
    ) -> bool:
        """Set the override cluster-wide (audited, evented); ``False``: this node only."""
        now = datetime.now(UTC)
        expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
        persisted = True
        try:
            async with self.ctx.store.store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO service_mode_override"
                    " (id, mode, reason, actor, expires_at, set_at)"
                    " VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
                    " mode = $1, reason = $2, actor = $3, expires_at = $4, set_at = $5",
                    mode.value,
                    reason,
                    actor,
                    expires_at,
                    now,
                )
                detail = {"mode": mode.value, "reason": reason, "expires_in": expires_in}
                await self._record(
                    tx,
                    ModeOverrideSet(mode.value, reason, actor, expires_at),
                    actor,
                    tenant_id,
                    "mode.override",
                    detail,
                )
        except StoreUnavailable:
            persisted = False
            logger.warning(
                "AUDIT (store unavailable): %s set this node's mode to %s for %s s: %s",
                actor, mode.value, expires_in, reason,
            )  # fmt: skip
        self.override = self._from_row_values(mode.value, reason, actor, expires_at)
        self.local_override = not persisted
        self.decide()
        await self.publish_changes()
        return persisted

    async def clear_override(self, *, actor: str, tenant_id: str | None) -> bool:
        """Lift the override everywhere (audited, evented); ``False``: on this node only."""
        persisted = True
        try:
            async with self.ctx.store.store.transaction() as tx:
                await tx.execute("DELETE FROM service_mode_override WHERE id = 1")
                await self._record(
                    tx, ModeOverrideCleared(actor), actor, tenant_id, "mode.override_clear", {}
                )
        except StoreUnavailable:
            persisted = False
            logger.warning("AUDIT (store unavailable): %s lifted this node's override", actor)
        self.override = None
        self.local_override = False
        self.decide()
        await self.publish_changes()
        return persisted

    async def _record(
        self,
        tx: UnitOfWork,
        payload: object,
        actor: str,
        tenant_id: str | None,
        action: str,
        detail: dict[str, Any],
    ) -> None:
        await tx.publish(Envelope.new(payload, tenant_id=tenant_id, actor_id=actor))
        await record(tx, AuditEntry(actor, action, "system/mode", tenant_id, detail))

    # ------------------------------------------------------------------ this node's row

    async def heartbeat(self) -> None:
        """Write this node's mode (also the write probe that closes the write breaker)."""
        decision = self.board.decision
        async with self.ctx.store.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO service_nodes (node_id, mode, reasons, heartbeat_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET"
                " mode = $2, reasons = $3, heartbeat_at = $4",
                self.node_id,
                decision.mode.value,
                json.dumps([reason.signal for reason in decision.reasons]),
                datetime.now(UTC),
            )

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node's last reported mode (newest heartbeat first)."""
        rows = await self.ctx.store.store.fetch(
            "SELECT node_id, mode, reasons, heartbeat_at FROM service_nodes"
            " ORDER BY heartbeat_at DESC LIMIT 100"
        )
        found = []
        for row in rows:
            at = parse_timestamp(row["heartbeat_at"])
            found.append(
                {
                    "node": str(row["node_id"]),
                    "mode": str(row["mode"]),
                    "reasons": json.loads(str(row["reasons"])),
                    "heartbeat_at": None if at is None else _iso(at),
                }
            )
        return found
