"""Tenants: the record, its id rule, and the events its changes publish."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..._exceptions import InvalidInput
from ..._json import InvalidJson, InvalidText, check, loads
from ..._util import TENANT_ID_PATTERN
from ...store import Row, row_timestamp
from ...transport import event

__all__ = (
    "TENANT_ID_PATTERN",
    "Tenant",
    "TenantCreated",
    "TenantDeactivated",
    "TenantUpdated",
    "validate_tenant_id",
)

logger = logging.getLogger("triotok.tenants")
_TENANT_ID = re.compile(TENANT_ID_PATTERN)


def validate_tenant_id(value: object, *, where: str = "tenant id") -> str:
    """Return ``value`` if it is a valid tenant id, else raise ``InvalidInput``."""
    if not isinstance(value, str) or not _TENANT_ID.fullmatch(value):
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"{where} {shown} must match {TENANT_ID_PATTERN}", code="invalid_tenant_id"
        )
    return value


@dataclass(frozen=True, slots=True)
class Tenant:
    """One tenant as stored; ``version`` grows by one with every change."""

    id: str
    name: str
    active: bool
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Row) -> Tenant:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            active=bool(row["active"]),
            settings=_settings(row["id"], row["settings"]),
            created_at=row_timestamp(row["created_at"]),
            updated_at=row_timestamp(row["updated_at"]),
            version=int(row["version"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON representation served by the HTTP API."""
        return {
            "id": self.id,
            "name": self.name,
            "active": self.active,
            "settings": self.settings,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }


def _settings(tenant_id: object, stored: Any) -> dict[str, Any]:
    # What an earlier version may have committed (nested too deep, NaN or
    # infinities, lone surrogates, not an object) must not make every read of
    # the tenant fail: such settings read as {} (the row keeps them until an
    # update replaces them) and the log says so.
    try:
        value = loads(stored) if isinstance(stored, str | bytes) else stored
        if not isinstance(value, dict):
            raise InvalidJson(f"not an object but {type(value).__name__}")
        check(value)
    except (InvalidJson, InvalidText) as exc:
        logger.warning(
            "tenant %r: stored settings cannot be served (%s); read as {}", tenant_id, exc
        )
        return {}
    return value


@event("tenant.created")
@dataclass(frozen=True, slots=True)
class TenantCreated:
    """A tenant was created."""

    tenant_id: str
    name: str


@event("tenant.updated")
@dataclass(frozen=True, slots=True)
class TenantUpdated:
    """A tenant's name or settings changed; caches drop it."""

    tenant_id: str
    version: int


@event("tenant.deactivated")
@dataclass(frozen=True, slots=True)
class TenantDeactivated:
    """A tenant was deactivated: its keys stop working; caches drop it."""

    tenant_id: str
    version: int
