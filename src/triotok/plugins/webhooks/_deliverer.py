"""The webhooks plugin's ``deliverer`` actor: signed POSTs, retries with backoff, a breaker each.

Invariants:

* A delivery is attempted at most ``attempts`` times, waiting
  ``backoff_delay`` between attempts (up to ``backoff_max`` while the
  endpoint's breaker is open); a 2xx answer ends it, anything else (another status, a timeout, a
  refused connection, an open breaker) is a failed attempt.
* Every endpoint has its own circuit breaker (shown in the tree under this
  actor), so a dead receiver is shed instead of holding the others' slots.
* A delivery that fails every attempt becomes a dead letter in the tenant's
  storage (``dead/<id>``) and can be replayed; a replay that succeeds
  removes it.
* At most ``concurrency`` deliveries are in flight; the others wait their
  turn in the actor's nursery. Pending retries live in memory: a restart
  of the plugin forgets them (the dead-letter list is what persists).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from ...actors import Actor, UnknownMessage
from ...resilience import Backoff, CircuitBreaker, CircuitOpen, backoff_delay
from .. import CapabilityDenied
from ._signing import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from . import Webhooks

__all__ = ("Deliverer", "Delivery")

logger = logging.getLogger("triotok.plugins.webhooks")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint (``dead_letter``: the entry it replays)."""

    id: str
    tenant: str
    endpoint_id: str
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    dead_letter: str | None = None


class _Refused(Exception):
    """The receiver answered, but not with a 2xx."""


class Deliverer(Actor):
    """Delivers :class:`Delivery` messages in the background (see the module docstring)."""

    def __init__(self, plugin: Webhooks) -> None:
        self._plugin = plugin
        settings = plugin.ctx.settings
        self.attempts = int(settings.get("attempts", 5))
        self.timeout = float(settings.get("timeout", 10.0))
        self.backoff = Backoff(
            min=float(settings.get("backoff_min", 1.0)),
            max=float(settings.get("backoff_max", 60.0)),
            jitter=float(settings.get("backoff_jitter", 0.2)),
        )
        self._slots = trio.Semaphore(int(settings.get("concurrency", 8)))
        self._breakers: dict[str, CircuitBreaker] = {}
        self._rng = random.Random()
        self.delivered = 0
        self.dead_lettered = 0

    async def on_start(self) -> None:
        self._plugin.deliverer = self.ctx.ref

    async def on_stop(self) -> None:
        if self._plugin.deliverer == self.ctx.ref:
            self._plugin.deliverer = None

    async def receive(self, message: Any) -> None:
        if not isinstance(message, Delivery):
            raise UnknownMessage(self.ctx.path, message, (Delivery,))
        self.ctx.start_soon(self._deliver, message)

    def breaker(self, endpoint_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            breaker = CircuitBreaker(
                f"webhook {endpoint_id}",
                window_size=10,
                minimum_calls=3,
                failure_rate_threshold=50.0,
                wait_in_open=float(self._plugin.ctx.settings.get("breaker_open", 30.0)),
                half_open_calls=1,
            )
            self._breakers[endpoint_id] = breaker
            self.ctx.register(f"endpoint-{endpoint_id}", breaker)
        return breaker

    async def _post(self, delivery: Delivery, attempt: int) -> int:
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.secret, delivery.body, stamp),
            "X-Triotok-Event": delivery.event_type,
            "X-Triotok-Delivery": delivery.id,
            "X-Triotok-Attempt": str(attempt),
            "User-Agent": "triotok-webhooks/1",
        }
        reply = await self._plugin.ctx.http(
            "POST", delivery.url, headers=headers, body=delivery.body, timeout=self.timeout
        )
        if not 200 <= reply.status < 300:
            raise _Refused(f"HTTP {reply.status}")
        return reply.status

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._attempts(delivery)
        finally:
            self._plugin.finished()

    async def _attempts(self, delivery: Delivery) -> None:
        error = "not attempted"
        attempts = 0
        async with self._slots:
            for attempt in range(1, self.attempts + 1):
                attempts = attempt
                wait = backoff_delay(self.backoff, attempt - 1, self._rng)
                try:
                    await self.breaker(delivery.endpoint_id).call(self._post, delivery, attempt)
                except CircuitOpen as exc:
                    error = "the endpoint's circuit is open"
                    # Shed, not parked: wait at most the longest backoff for it.
                    wait = max(wait, min(exc.retry_after, self.backoff.max))
                except CapabilityDenied as exc:
                    error = str(exc)  # the grant does not cover this host: retrying cannot help
                    break
                except Exception as exc:  # a refused answer, a timeout, a connection error
                    error = (
                        str(exc) if isinstance(exc, _Refused) else f"{type(exc).__name__}: {exc}"
                    )
                else:
                    self.delivered += 1
                    if delivery.dead_letter is not None:
                        await self._plugin.ctx.storage.delete(
                            f"dead/{delivery.dead_letter}", tenant=delivery.tenant
                        )
                    return
                if attempt < self.attempts:
                    await trio.sleep(wait)
        await self._dead_letter(delivery, attempts, error)

    async def _dead_letter(self, delivery: Delivery, attempts: int, error: str) -> None:
        letter_id = delivery.dead_letter or delivery.id
        entry = {
            "id": letter_id,
            "endpoint_id": delivery.endpoint_id,
            "url": delivery.url,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "attempts": attempts,
            "last_error": error[:500],
            "failed_at": datetime.now(UTC).isoformat(),
            "body": delivery.body.decode(),
        }
        try:
            await self._plugin.ctx.storage.put(f"dead/{letter_id}", entry, tenant=delivery.tenant)
        except Exception:  # the tenant switched the plugin off meanwhile: nothing to keep
            logger.exception("could not keep the dead letter of delivery %s", delivery.id)
            return
        self.dead_lettered += 1
        logger.warning(
            "webhook delivery %s to %s failed %d times: %s",
            delivery.id,
            delivery.url,
            attempts,
            error,
        )

    def statistics(self) -> dict[str, int]:
        return {"delivered": self.delivered, "dead_lettered": self.dead_lettered}
