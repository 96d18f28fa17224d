"""Payments: the provider seam of the orders module, every call behind one breaker.

A minimal version of the shared payments interface: the ``manual``
provider (always approves) and the gateway with its ``payments`` breaker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import trio

from ..._exceptions import CircuitOpen, DomainError
from ...resilience import CircuitBreaker

__all__ = (
    "Charge",
    "HttpProvider",
    "ManualProvider",
    "PaymentDeclined",
    "PaymentError",
    "PaymentProvider",
    "Payments",
    "ProviderUnavailable",
    "Refund",
)

T = TypeVar("T")


class PaymentError(DomainError):
    """A payment call failed."""

    code = "payment_error"


class PaymentDeclined(PaymentError):
    """The provider said no; nothing was charged."""

    code = "payment_declined"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the payment was declined: {reason}", reason=reason)
        self.reason = reason


class ProviderUnavailable(PaymentError):
    """The provider failed, timed out, or the breaker is open; nothing was charged."""

    code = "payment_unavailable"
    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge the provider made."""

    charge_id: str
    amount: int
    currency: str
    provider: str


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund the provider made."""

    refund_id: str
    charge_id: str
    amount: int
    currency: str
    provider: str


class PaymentProvider(Protocol):
    """What a payment provider does: charge and refund, idempotently per key."""

    name: str

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund: ...


class ManualProvider:
    """Approves every charge and refund (``make run``'s default)."""

    name = "manual"

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        return Charge(f"manual-{order_id}", amount, currency, self.name)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        return Refund(f"refund-{charge_id}", charge_id, amount, currency, self.name)


class HttpProvider:
    """A provider behind an HTTP API (not in this version)."""

    name = "http"

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        raise NotImplementedError("the http payment provider")

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        raise NotImplementedError("the http payment provider")


class Payments:
    """The gateway: the tenant's provider, every call through the ``payments`` breaker."""

    def __init__(
        self,
        provider: PaymentProvider | None = None,
        *,
        timeout: float = 5.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.provider = provider or ManualProvider()
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker(
            "payments", minimum_calls=5, wait_in_open=30.0, ignore_exceptions=(PaymentDeclined,)
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Payments:
        return cls(timeout=float(settings.get("payments.timeout", 5.0)))

    def provider_for(self, tenant_id: str) -> PaymentProvider:
        return self.provider

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        provider = self.provider_for(tenant_id)

        async def call() -> Charge:
            return await provider.charge(
                tenant_id=tenant_id,
                order_id=order_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded(call)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        provider = self.provider_for(tenant_id)

        async def call() -> Refund:
            return await provider.refund(
                tenant_id=tenant_id,
                charge_id=charge_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded(call)

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        async def timed() -> T:
            with trio.fail_after(self.timeout):
                return await call()

        try:
            return await self.breaker.call(timed)
        except CircuitOpen as open_:
            raise ProviderUnavailable(
                "the payment provider is unavailable", retry_after=open_.retry_after
            ) from None
        except trio.TooSlowError:
            raise ProviderUnavailable("the payment provider did not answer in time") from None
        except PaymentError:
            raise
        except Exception as failed:
            raise ProviderUnavailable(f"the payment provider failed: {failed}") from failed
