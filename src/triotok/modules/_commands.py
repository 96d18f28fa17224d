"""What every command of an entity carries and writes: who sent it, its event, its audit row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store import UnitOfWork
from ..transport import Envelope
from ._audit import AuditEntry, record_deferred

__all__ = ("Who", "record_change")


@dataclass(frozen=True, slots=True)
class Who:
    """Who sent a command and the request it belongs to (carried into the event)."""

    actor: str
    trace_id: str | None = None


async def record_change(
    tx: UnitOfWork,
    payload: object,
    *,
    tenant_id: str,
    who: Who,
    action: str,
    resource: str,
    **detail: Any,
) -> None:
    """Write a change's event and its audit entry in the unit of work ``tx``.

    Called once per accepted command, inside the transaction that writes the
    rows, so the change, its event and its audit entry exist together or not
    at all. Both rows are deferred (``tx.defer_publish``, ``tx.defer``): they
    travel with the unit's next round trip, usually its commit, so they cost
    no round trip of their own.
    """
    envelope = Envelope.new(payload, tenant_id=tenant_id, trace_id=who.trace_id, actor_id=who.actor)
    tx.defer_publish(envelope)
    record_deferred(tx, AuditEntry(who.actor, action, resource, tenant_id, detail))
