"""Idempotency keys for POST routes: a retried request is answered, not done again.

A route declared ``Route(..., idempotent=True)`` accepts an
``Idempotency-Key`` header (1-255 visible ASCII characters). Keys are kept
per tenant for :data:`TTL` (24 h) in the ``idempotency_keys`` table of the
:data:`IDEMPOTENCY` module, whose sweeper deletes expired keys::

    POST /api/orders  Idempotency-Key: k1  {"items": [...]}   -> 201, order A
    POST /api/orders  Idempotency-Key: k1  {"items": [...]}   -> 201, order A (replayed)
    POST /api/orders  Idempotency-Key: k1  {"items": [other]} -> 422 idempotency_key_reused

Invariants:

* The request's *fingerprint* is the method, the path and the body's
  canonical JSON (keys sorted, defaults filled in by the route's model): the
  same key with another fingerprint is refused (422), never replayed.
* The first request claims the key (one ``INSERT ... ON CONFLICT DO
  NOTHING``: two nodes cannot both claim it) and its answer is stored when
  its status is below 500: a retry gets the same status, headers and body,
  with ``Idempotent-Replayed: true``, and nothing runs again. While it runs,
  the same key answers 409 ``idempotency_in_progress`` (``Retry-After``).
* A 5xx answer (the provider unavailable, a store failure) releases the key:
  nothing was done that a retry must not do again.
* The handler of a claimed key runs to its end even if the client goes away
  (shielded, bounded by :data:`RUN_LIMIT`), so its outcome is stored. A claim
  left by a process that died is taken over after :data:`LEASE` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import trio

from .._exceptions import InvalidInput, RequestError
from .._json import dumps
from ..actors import Actor
from ..modules import Module, ModuleContext
from ..store import Migration, Schema, Store
from ..supervision import ChildSpec

__all__ = (
    "HEADER",
    "IDEMPOTENCY",
    "LEASE",
    "RUN_LIMIT",
    "TTL",
    "IdempotencyKeys",
    "IdempotencySweeper",
    "KeyInUse",
    "Stored",
    "fingerprint",
    "parse_idempotency_key",
)

HEADER = "Idempotency-Key"
#: How long a key and its answer are kept (per tenant).
TTL = timedelta(hours=24)
#: Seconds after which a claim whose answer never came (a dead process) may be taken over.
LEASE = 60.0
#: Seconds a claimed request may run once its client went away.
RUN_LIMIT = 45.0
#: Seconds between two sweeps of expired keys.
SWEEP_INTERVAL = 300.0

_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def parse_idempotency_key(value: str) -> str:
    """An ``Idempotency-Key`` header value, or :class:`InvalidInput`."""
    if not _KEY.fullmatch(value):
        raise InvalidInput(
            "Idempotency-Key is 1-255 visible ASCII characters (a UUID is a good one)",
            field=HEADER,
        )
    return value


def fingerprint(method: str, path: str, body: Any) -> str:
    """What a key's requests must agree on: method, path and the body's canonical JSON."""
    data = b"" if body is None else msgspec.json.encode(msgspec.to_builtins(body), order="sorted")
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored answer: replayed as is to a retry with the same key."""

    status: int
    headers: dict[str, str]
    body: bytes


def _tables(text: str, integer: str, blob: str, stamp: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE idempotency_keys (
            tenant_id {text} NOT NULL,
            key {text} NOT NULL,
            fingerprint {text} NOT NULL,
            state {text} NOT NULL,
            status {integer},
            headers {text},
            body {blob},
            claimed_at {stamp} NOT NULL,
            expires_at {stamp} NOT NULL,
            PRIMARY KEY (tenant_id, key))""",
        "CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)",
    )


SCHEMA = Schema(
    "idempotency",
    (
        Migration(
            1,
            "idempotency_keys",
            sqlite=_tables("TEXT", "INTEGER", "BLOB", "TIMESTAMPTZ"),
            postgresql=_tables("text", "integer", "bytea", "timestamptz"),
        ),
    ),
)


class IdempotencyKeys:
    """The keys table: claim, store an answer, release, sweep."""

    def __init__(self, ttl: timedelta = TTL, lease: float = LEASE) -> None:
        self.ttl = ttl
        self.lease = timedelta(seconds=lease)

    async def claim(
        self, store: Store, tenant_id: str, key: str, fingerprint: str
    ) -> Stored | None:
        """Claim ``key`` (``None``: run the request) or the answer stored for it.

        Raises 422 ``idempotency_key_reused`` for another fingerprint and 409
        ``idempotency_in_progress`` while the first request runs.
        """
        for _ in range(3):  # a claim that expires or is taken over meanwhile: look again
            now = datetime.now(UTC)
            async with store.transaction() as tx:
                claimed = await tx.execute(
                    "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, state,"
                    " claimed_at, expires_at) VALUES ($1, $2, $3, 'running', $4, $5)"
                    " ON CONFLICT (tenant_id, key) DO NOTHING",
                    tenant_id,
                    key,
                    fingerprint,
                    now,
                    now + self.ttl,
                )
                if claimed:
                    return None
                row = await tx.fetchrow(
                    "SELECT fingerprint, state, status, headers, body, claimed_at, expires_at"
                    " FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
                    tenant_id,
                    key,
                )
                if row is None:
                    continue  # released meanwhile
                expires_at = _stamp(row["expires_at"])
                if expires_at <= now:
                    await tx.execute(
                        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2"
                        " AND expires_at = $3",
                        tenant_id,
                        key,
                        row["expires_at"],
                    )
                    continue
                if row["fingerprint"] != fingerprint:
                    raise RequestError(
                        "this Idempotency-Key was used for another request (method, path or"
                        " body); use a new key",
                        status=422,
                        code="idempotency_key_reused",
                    )
                if row["state"] == "done":
                    return Stored(
                        int(row["status"]), json.loads(str(row["headers"])), bytes(row["body"])
                    )
                if _stamp(row["claimed_at"]) + self.lease <= now:
                    taken = await tx.execute(
                        "UPDATE idempotency_keys SET claimed_at = $1 WHERE tenant_id = $2"
                        " AND key = $3 AND state = 'running' AND claimed_at = $4",
                        now,
                        tenant_id,
                        key,
                        row["claimed_at"],
                    )
                    if taken:
                        return None
                    continue
            raise _in_progress()
        raise _in_progress()

    async def complete(self, store: Store, tenant_id: str, key: str, answer: Stored) -> None:
        """Store the answer of the claimed ``key``."""
        await store.execute(
            "UPDATE idempotency_keys SET state = 'done', status = $1, headers = $2, body = $3"
            " WHERE tenant_id = $4 AND key = $5",
            answer.status,
            dumps(answer.headers),
            answer.body,
            tenant_id,
            key,
        )

    async def release(self, store: Store, tenant_id: str, key: str) -> None:
        """Forget the claimed ``key`` (its request did nothing a retry must not do)."""
        await store.execute(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'running'",
            tenant_id,
            key,
        )

    async def sweep(self, store: Store, *, now: datetime | None = None) -> int:
        """Delete the expired keys of every tenant; how many."""
        return await store.execute(
            "DELETE FROM idempotency_keys WHERE expires_at <= $1", now or datetime.now(UTC)
        )


def _stamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class KeyInUse(RequestError):
    """The first request with this key is still running (409, ``Retry-After: 1``)."""

    code = "idempotency_in_progress"
    retryable = True
    retry_after = 1.0


def _in_progress() -> KeyInUse:
    return KeyInUse(
        "a request with this Idempotency-Key is still running; retry shortly", status=409
    )


async def run_once(
    keys: IdempotencyKeys,
    store: Store,
    tenant_id: str,
    key: str,
    print_: str,
    respond: Callable[[], Awaitable[Stored]],
) -> tuple[Stored, bool]:
    """The answer for ``key``: stored (``replayed`` True), or ``respond()``'s, then stored.

    ``respond`` answers problems as :class:`Stored` too (the caller renders
    them), so every outcome below 500 is stored and a 5xx releases the key.
    """
    stored = await keys.claim(store, tenant_id, key, print_)
    if stored is not None:
        return stored, True
    # Shielded: a client that goes away must not leave the outcome unrecorded.
    with trio.CancelScope(shield=True):
        try:
            with trio.fail_after(RUN_LIMIT):
                answer = await respond()
        except BaseException:
            with trio.move_on_after(5.0):
                await keys.release(store, tenant_id, key)
            raise
        with trio.move_on_after(5.0):
            if answer.status < 500:
                await keys.complete(store, tenant_id, key, answer)
            else:
                await keys.release(store, tenant_id, key)
    return answer, False


# ---------------------------------------------------------------- the module


class IdempotencySweeper(Actor):
    """Deletes expired idempotency keys every ``interval`` seconds (any node may)."""

    def __init__(self, ctx: ModuleContext, keys: IdempotencyKeys, interval: float) -> None:
        self._ctx = ctx
        self._keys = keys
        self._interval = interval
        self.swept = 0

    async def on_start(self) -> None:
        self.ctx.start_soon(self._loop)

    async def _loop(self) -> None:
        while True:
            await trio.sleep(self._interval)
            self.swept += await self._keys.sweep(self._ctx.store.store)

    async def receive(self, message: Any) -> int:
        """Any message sweeps now; the reply is how many keys were deleted."""
        swept = await self._keys.sweep(self._ctx.store.store)
        self.swept += swept
        return swept


def _setup(ctx: ModuleContext) -> None:
    ttl = timedelta(seconds=float(ctx.settings.get("ttl", TTL.total_seconds())))
    ctx.provide(IdempotencyKeys(ttl, float(ctx.settings.get("lease", LEASE))))


def _actors(ctx: ModuleContext) -> list[ChildSpec]:
    interval = float(ctx.settings.get("sweep_interval", SWEEP_INTERVAL))
    return [ChildSpec("sweeper", IdempotencySweeper, (ctx, ctx.get(IdempotencyKeys), interval))]


#: The idempotency keys of every route declared ``idempotent=True``.
IDEMPOTENCY = Module(
    name="idempotency",
    migrations=SCHEMA.migrations,
    actors=_actors,
    setup=_setup,
    description="Idempotency-Key: stored answers of POST requests, per tenant, for 24 h",
)
