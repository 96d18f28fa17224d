"""API keys: generated once, stored hashed, resolved through a cache, checked in constant time.

A key reads ``ttk_<id>_<secret>``: the id finds the row (and the cache entry),
the SHA-256 of the whole key must equal the stored hash. A high-entropy
secret (256 bits) makes a slow password hash unnecessary; the comparison is
constant-time (:func:`hmac.compare_digest`). The plaintext is returned once,
at creation, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._exceptions import NotFound, Unauthenticated
from ...store import StoreHandle, parse_timestamp, row_timestamp
from ...transport import Envelope, InMemoryTransport, event
from .._audit import AuditEntry, record
from .._lookup import CachedLookup, Directory
from ._roles import Role

__all__ = (
    "ApiKey",
    "ApiKeyRepository",
    "ApiKeyRevoked",
    "KeyDirectory",
    "KeyResolver",
    "hash_key",
    "parse_key",
    "verify_key",
)

_KEY = re.compile(r"ttk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@event("api_key.revoked")
@dataclass(frozen=True, slots=True)
class ApiKeyRevoked:
    """An API key was revoked; caches on every node drop it."""

    key_id: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never the plaintext)."""

    id: str
    tenant_id: str
    role: Role
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def principal(self) -> str:
        """How the audit log names the holder."""
        return f"key:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored (the plaintext never is)."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(key: str) -> str | None:
    """The key id of a well-formed key, else ``None``."""
    match = _KEY.fullmatch(key)
    return None if match is None else match[1]


def verify_key(stored: ApiKey | None, key: str) -> ApiKey:
    """``stored`` if ``key`` matches it and it is not revoked; else :class:`Unauthenticated`."""
    if stored is None or not hmac.compare_digest(stored.key_hash, hash_key(key)):
        raise Unauthenticated("invalid API key", code="invalid_api_key")
    if stored.revoked_at is not None:
        raise Unauthenticated("this API key was revoked", code="invalid_api_key")
    return stored


_COLUMNS = "id, tenant_id, role, key_hash, created_at, revoked_at"


def _from_row(row: Any) -> ApiKey:
    revoked = row["revoked_at"]
    return ApiKey(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        role=Role(row["role"]),
        key_hash=str(row["key_hash"]),
        created_at=row_timestamp(row["created_at"]),
        revoked_at=parse_timestamp(revoked),
    )


class ApiKeyRepository:
    """API keys in the store; creation and revocation are audited."""

    def __init__(self, handle: StoreHandle) -> None:
        self._handle = handle
        self.lookups = 0

    async def get(self, key_id: str) -> ApiKey | None:
        self.lookups += 1
        row = await self._handle.store.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id
        )
        return None if row is None else _from_row(row)

    async def list(self, tenant_id: str) -> list[ApiKey]:
        rows = await self._handle.store.fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant_id,
        )
        return [_from_row(r) for r in rows]

    async def create(
        self, tenant_id: str, role: Role, *, actor: str, tx: Any = None
    ) -> tuple[ApiKey, str]:
        """A new key for ``tenant_id``; returns the record and the plaintext (shown once)."""
        key_id = secrets.token_hex(8)
        plaintext = f"ttk_{key_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        key = ApiKey(key_id, tenant_id, role, hash_key(plaintext), now, None)
        if tx is not None:
            await self._insert(tx, key, actor)
        else:
            async with self._handle.store.transaction() as own:
                await self._insert(own, key, actor)
        return key, plaintext

    async def _insert(self, tx: Any, key: ApiKey, actor: str) -> None:
        exists = await tx.fetchval("SELECT 1 FROM tenants WHERE id = $1", key.tenant_id)
        if exists is None:
            raise NotFound(f"no tenant {key.tenant_id!r}")
        await tx.execute(
            "INSERT INTO api_keys (id, tenant_id, key_hash, role, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            key.id,
            key.tenant_id,
            key.key_hash,
            key.role.value,
            key.created_at,
        )
        await record(
            tx,
            AuditEntry(
                actor, "key.create", f"key/{key.id}", key.tenant_id, {"role": key.role.value}
            ),
        )

    async def revoke(
        self, tenant_id: str, key_id: str, *, actor: str, trace_id: str | None = None
    ) -> ApiKey:
        """Revoke a key of ``tenant_id`` (:class:`NotFound` for another tenant's key)."""
        async with self._handle.store.transaction() as tx:
            row = await tx.fetchrow(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1 AND tenant_id = $2",
                key_id,
                tenant_id,
            )
            if row is None:
                raise NotFound(f"no key {key_id!r}")
            if row["revoked_at"] is None:
                await tx.execute(
                    "UPDATE api_keys SET revoked_at = $1 WHERE id = $2", datetime.now(UTC), key_id
                )
                envelope = Envelope.new(
                    ApiKeyRevoked(key_id), tenant_id=tenant_id, trace_id=trace_id, actor_id=actor
                )
                await tx.publish(envelope)
                await record(tx, AuditEntry(actor, "key.revoke", f"key/{key_id}", tenant_id))
            row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        assert row is not None
        return _from_row(row)


#: The hot-path handle: ``await keys.get(key_id) -> ApiKey | None``.
KeyDirectory = Directory[str, ApiKey]


class KeyResolver(CachedLookup[str, ApiKey]):
    """``/app/access``: caches API keys by id; drops them on ``api_key.*`` events."""

    def __init__(
        self,
        directory: KeyDirectory,
        repository: ApiKeyRepository,
        events: InMemoryTransport | None = None,
        *,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        stale_grace: float = 3600.0,
    ) -> None:
        super().__init__(
            directory,
            repository.get,
            events=events,
            event_prefix="api_key.",
            key_of=_key_of,
            ttl=ttl,
            negative_ttl=negative_ttl,
            stale_grace=stale_grace,
        )


def _key_of(envelope: Envelope) -> str | None:
    key_id = getattr(envelope.payload, "key_id", None)
    return key_id if isinstance(key_id, str) else None
