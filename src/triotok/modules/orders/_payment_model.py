"""The payment gateway's vocabulary: its errors, results, provider protocol, the manual provider.

Shared by :mod:`._http_provider` and :mod:`._payments` (which re-exports
every public name here), with the validators both use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

from ..._exceptions import (
    DependencyUnavailable,
    DomainError,
    InvalidConfig,
    InvalidInput,
    PaymentRefused,
)
from ..._util import TENANT_ID_PATTERN, seconds

__all__ = (
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "Charge",
    "ManualProvider",
    "PaymentDeclined",
    "PaymentError",
    "PaymentProvider",
    "ProviderUnavailable",
    "Refund",
)

#: Longest provider call anyone may configure: an HTTP request waits for it.
MAX_TIMEOUT: Final = 300.0
DEFAULT_TIMEOUT: Final = 5.0

TENANT_ID = re.compile(TENANT_ID_PATTERN)
TOKEN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: safe in a header and a log line


# --------------------------------------------------------------------------- errors


class PaymentError(DomainError):
    """Base of the payment gateway's errors."""

    code = "payment_error"


class PaymentDeclined(PaymentError, PaymentRefused):
    """The provider answered no (a card declined); ``reason`` is its word for why.

    Not a breaker failure. HTTP: 402 ``payment_declined`` with ``reason``.
    """

    code = "payment_declined"

    def __init__(self, reason: str, *, provider: str = "") -> None:
        super().__init__(f"the payment was declined: {reason}", reason=reason)
        self.reason = reason
        self.provider = provider


class ProviderUnavailable(PaymentError, DependencyUnavailable):
    """The provider failed, timed out or answered nonsense, or the breaker is open.

    ``retry_after`` is the seconds to wait (the rest of the breaker's open
    time, a provider's ``Retry-After``), or ``None`` when unknown. HTTP: 503
    ``payment_unavailable`` with ``Retry-After``.
    """

    code = "payment_unavailable"

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail, retry_after=retry_after)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Charge:
    """An approved charge: the provider's id for it, what was charged, and by which provider."""

    charge_id: str
    amount: int
    currency: str
    provider: str


@dataclass(frozen=True, slots=True)
class Refund:
    """An approved refund of ``charge_id``."""

    refund_id: str
    charge_id: str
    amount: int
    currency: str
    provider: str


class PaymentProvider(Protocol):
    """What :class:`Payments` calls; raise :class:`PaymentDeclined` or :class:`ProviderUnavailable`.

    A provider must treat ``idempotency_key`` as the identity of the
    operation: the same key again answers the first answer and charges
    nothing more.
    """

    name: str

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund: ...


# --------------------------------------------------------------------------- providers


class ManualProvider:
    """``"manual"``: approves everything, at once (the default; ``make run``'s demo).

    Stateless and deterministic: the charge of order ``o`` is ``manual-o`` and
    its refund ``manual-refund-o``, so a retry answers the same ids.
    """

    name = "manual"

    def __repr__(self) -> str:
        return "<ManualProvider>"

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Approve: ``Charge(f"manual-{order_id}", amount, currency, "manual")``."""
        return Charge(f"manual-{order_id}", amount, currency, self.name)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        """Approve: the refund of ``manual-o`` is ``manual-refund-o``."""
        refund_id = "manual-refund-" + charge_id.removeprefix("manual-")
        return Refund(refund_id, charge_id, amount, currency, self.name)


# --------------------------------------------------------------------------- validators


def check_token(field: str, value: object) -> None:
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1 to 255 visible ASCII characters, got {value!r}", field=field
        )


def check_timeout(field: str, value: object) -> float:
    number = seconds(field, value, allow_zero=False)
    if number > MAX_TIMEOUT:
        raise InvalidConfig(field, f"must be at most {MAX_TIMEOUT:g} seconds, got {value!r}")
    return number


def provider_url(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidConfig(field, f"must be a URL, got {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when it is not a number in range
    except ValueError:
        raise InvalidConfig(field, f"{value!r} is not a valid URL") from None
    if port == 0:
        raise InvalidConfig(field, f"{value!r} has port 0")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidConfig(field, f"must be an http:// or https:// URL with a host, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidConfig(field, "must not hold credentials")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise InvalidConfig(field, f"must have no query or fragment, got {value!r}")
    return value.rstrip("/")
