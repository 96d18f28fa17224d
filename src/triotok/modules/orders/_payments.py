"""The payment gateway of the orders module: providers behind one circuit breaker.

::

    payments = Payments.from_settings({"payments": {"provider": "http",
                                                    "url": "https://pay.example/v1"}})
    charge = await payments.charge(tenant_id="acme", order_id=order_id, amount=1250,
                                   currency="EUR", idempotency_key=f"{order_id}:charge")

Every provider call goes through :attr:`Payments.breaker` (one
:class:`~triotok.resilience.CircuitBreaker` named ``"payments"``) and a
timeout. What a caller sees:

* an approval: a :class:`Charge` (or :class:`Refund`);
* :class:`PaymentDeclined`: the provider answered no. Not a breaker failure
  (the provider is working); HTTP answers 402 ``payment_declined``;
* :class:`ProviderUnavailable`: the provider failed (5xx, a refused
  connection), did not answer within the timeout, answered something that is
  not a valid answer, or the breaker is open and the provider was not called
  at all (``retry_after`` is then the rest of the open time). HTTP answers
  503 ``payment_unavailable`` with ``Retry-After``.

Invariants:

* an ``idempotency_key`` reaches the provider unchanged on every attempt
  (``Idempotency-Key`` header for :class:`HttpProvider`), so a retried
  charge is charged once by a provider that honours it;
* an open breaker never calls a provider;
* no message of an error names the provider's URL (it is answered to HTTP
  clients); the underlying cause is chained for the logs.

Providers: :class:`ManualProvider` (``"manual"``, the default: approves
everything, stateless, deterministic ids) and :class:`HttpProvider`
(``"http"``: JSON over HTTP, see its docstring for the wire format). Any
object with the :class:`PaymentProvider` shape works too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import urlsplit

import trio

from ..._exceptions import (
    DependencyUnavailable,
    DomainError,
    InvalidConfig,
    InvalidInput,
    PaymentRefused,
)
from ..._json import InvalidJson, InvalidText, loads
from ..._util import TENANT_ID_PATTERN, percentage, positive_int, seconds
from ...resilience import BreakerTransition, CircuitBreaker, CircuitOpen

if TYPE_CHECKING:
    import httpx

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

_log = logging.getLogger("triotok.orders.payments")

T = TypeVar("T")

#: Longest provider call anyone may configure: an HTTP request waits for it.
MAX_TIMEOUT: Final = 300.0
DEFAULT_TIMEOUT: Final = 5.0
#: The breaker's settings unless ``payments.breaker.*`` says otherwise.
BREAKER_DEFAULTS: Final[Mapping[str, float | int]] = {
    "failure_rate": 50.0,
    "minimum_calls": 5,
    "window_size": 20,
    "wait_in_open": 30.0,
    "half_open_calls": 2,
}
_PROVIDERS: Final = ("manual", "http")
_ROUTE_KEYS: Final = ("provider", "url", "timeout")
_TOP_KEYS: Final = (*_ROUTE_KEYS, "tenants", "breaker")

_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: safe in a header and a log line
_CURRENCY = re.compile(r"[A-Z]{3}")


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


class HttpProvider:
    """``"http"``: a payment service that speaks JSON over HTTP at ``url``.

    ``POST {url}/charges`` with ``{"tenant_id", "order_id", "amount",
    "currency"}`` and ``POST {url}/refunds`` with ``{"tenant_id",
    "charge_id", "amount", "currency"}``, each with an ``Idempotency-Key``
    header. The answers:

    * ``2xx`` ``{"status": "approved", "id": "..."}`` (``amount`` and
      ``currency``, when present, must be the ones asked): the charge or refund;
    * ``402`` (or ``2xx`` with ``"status": "declined"``), ``{"reason": "..."}``:
      :class:`PaymentDeclined`;
    * anything else (``5xx``, ``429``, other ``4xx``, redirects), a body that
      is not such a JSON object or larger than ``max_answer_bytes``, a refused
      connection, or no whole answer within ``timeout`` seconds:
      :class:`ProviderUnavailable` (``retry_after`` from a ``Retry-After``
      header in seconds).

    Connections are kept alive between calls; :meth:`aclose` closes them
    (a later call opens new ones). Use one provider within one trio run.
    """

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_answer_bytes: int = 65_536,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = _provider_url("url", url)
        self.timeout = _timeout("timeout", timeout)
        self.max_answer_bytes = positive_int("max_answer_bytes", max_answer_bytes)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<HttpProvider {self.url} timeout={self.timeout:g}s>"

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Ask ``POST {url}/charges``; see the class docstring for the answers."""
        body = {
            "tenant_id": tenant_id,
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
        }
        answer = await self._exchange("/charges", body, idempotency_key)
        charge_id = self._approved(answer, amount, currency)
        return Charge(charge_id, amount, currency, self.name)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        """Ask ``POST {url}/refunds``; see the class docstring for the answers."""
        body = {
            "tenant_id": tenant_id,
            "charge_id": charge_id,
            "amount": amount,
            "currency": currency,
        }
        answer = await self._exchange("/refunds", body, idempotency_key)
        refund_id = self._approved(answer, amount, currency)
        return Refund(refund_id, charge_id, amount, currency, self.name)

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ----------------------------------------------------------------- the exchange

    def _open(self) -> httpx.AsyncClient:
        # Imported on first use: httpx takes ~0.15 s to import, which a server whose
        # tenants all pay manually should not spend at start.
        import httpx

        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            # The URL is configured; no proxy or netrc from the environment.
            trust_env=False,
            transport=self._transport,
            headers={"User-Agent": "triotok-payments", "Accept": "application/json"},
        )
        return self._client

    async def _exchange(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        """POST ``body``; the answer's JSON object when it approves, else raise."""
        import httpx

        client = self._client or self._open()
        raw = b""
        status = 0
        retry_after: float | None = None
        with trio.move_on_after(self.timeout) as deadline:
            try:
                async with client.stream(
                    "POST", self.url + path, json=body, headers={"Idempotency-Key": key}
                ) as response:
                    status = response.status_code
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    raw = await self._read(response)
            except httpx.TimeoutException as exc:
                raise self._timed_out() from exc
            except (httpx.HTTPError, _AnswerTooLarge) as exc:
                raise ProviderUnavailable(
                    f"payment provider {self.name!r} could not be reached or did not answer"
                    f" ({type(exc).__name__})"
                ) from exc
        if deadline.cancelled_caught:
            raise self._timed_out()
        doc = _json_object(raw)
        if 200 <= status < 300:
            if doc is not None and doc.get("status") == "approved":
                return doc
            if doc is not None and doc.get("status") == "declined":
                raise PaymentDeclined(_reason(doc), provider=self.name)
            raise ProviderUnavailable(
                f"payment provider {self.name!r} answered {status} without a valid decision"
            )
        if status == 402:
            raise PaymentDeclined(_reason(doc), provider=self.name)
        raise ProviderUnavailable(
            f"payment provider {self.name!r} answered {status}", retry_after=retry_after
        )

    async def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise _AnswerTooLarge(size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"payment provider {self.name!r} did not answer within {self.timeout:g}s"
        )

    def _approved(self, doc: dict[str, Any], amount: int, currency: str) -> str:
        """The id of an approving answer, after checking it is the operation asked for."""
        ident = doc.get("id")
        if not isinstance(ident, str) or not _TOKEN.fullmatch(ident):
            raise ProviderUnavailable(f"payment provider {self.name!r} approved without a valid id")
        if doc.get("amount", amount) != amount or doc.get("currency", currency) != currency:
            raise ProviderUnavailable(
                f"payment provider {self.name!r} approved another amount or currency"
            )
        return ident


class _AnswerTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"answer larger than the limit ({size} bytes read)")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = loads(raw)
    except (InvalidJson, InvalidText):
        return None
    return doc if isinstance(doc, dict) else None


def _reason(doc: dict[str, Any] | None) -> str:
    reason = None if doc is None else doc.get("reason")
    if isinstance(reason, str) and 0 < len(reason) <= 200 and reason.isprintable():
        return reason
    return "declined"


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` in whole seconds (an HTTP date is not used), capped at an hour."""
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), 3600))


# --------------------------------------------------------------------------- the gateway


class Payments:
    """The orders module's payment gateway: the tenant's provider, one breaker, a timeout.

    ``provider`` serves every tenant without an entry in ``tenants``. Each
    call is bounded by the provider's own ``timeout`` attribute when it has
    one (:class:`HttpProvider`), else by ``timeout``. ``breaker`` defaults
    to one named ``"payments"`` with :data:`BREAKER_DEFAULTS`; it records
    :class:`ProviderUnavailable` (and any unexpected error of a provider) as
    a failure, a decline as a success, cancellation as nothing.

    Register the breaker on an actor to show it in the tree and on the
    operators' page: ``self.ctx.register("payments", payments.breaker)``.
    """

    def __init__(
        self,
        provider: PaymentProvider | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tenants: Mapping[str, PaymentProvider] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._timeout = _timeout("timeout", timeout)
        self._default = self._route(provider or ManualProvider())
        self._tenants: dict[str, tuple[PaymentProvider, float]] = {}
        for tenant_id, tenant_provider in (tenants or {}).items():
            _tenant_id(f"tenants.{tenant_id}", tenant_id)
            self._tenants[tenant_id] = self._route(tenant_provider)
        self.breaker = breaker if breaker is not None else _breaker(BREAKER_DEFAULTS)

    def __repr__(self) -> str:
        return (
            f"<Payments default={self._default[0]!r} tenants={len(self._tenants)}"
            f" breaker={self.breaker!r}>"
        )

    def _route(self, provider: PaymentProvider) -> tuple[PaymentProvider, float]:
        own = getattr(provider, "timeout", None)
        return provider, self._timeout if own is None else _timeout("timeout", own)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Payments:
        """The gateway the orders module's settings describe (``InvalidConfig`` naming the key).

        Keys, nested (``{"payments": {"provider": "http", ...}}``, as the TOML
        table ``[modules.orders.payments]`` gives) or dotted
        (``{"payments.provider": "http"}``):

        * ``payments.provider``: ``"manual"`` (default) or ``"http"``;
        * ``payments.url``: the http provider's base URL (http or https, no
          query, no credentials); required when a route uses ``"http"``;
        * ``payments.timeout``: seconds a call may take, default 5, at most 300;
        * ``payments.tenants.<tenant_id>.{provider,url,timeout}``: one tenant's
          route; missing keys fall back to the ones above;
        * ``payments.breaker.{failure_rate, minimum_calls, window_size,
          wait_in_open, half_open_calls}``: the breaker (percent, calls,
          calls, seconds, calls); defaults in :data:`BREAKER_DEFAULTS`.

        Other keys of ``settings`` belong to the orders module and are left
        alone; an unknown key under ``payments`` is an error (a typo must
        not be ignored).
        """
        tree = _nested(settings).get("payments", {})
        if not isinstance(tree, Mapping):
            raise InvalidConfig("payments", "must be a table of settings")
        _known("payments", tree, _TOP_KEYS)
        base = _route_settings("payments", tree, None)
        if base[0] == "http" and base[1] is None:
            raise InvalidConfig("payments.url", "required when payments.provider is 'http'")
        built: dict[tuple[str, str | None, float], PaymentProvider] = {}

        def provider(kind: str, url: str | None, timeout: float) -> PaymentProvider:
            # Routes that agree share one provider (and its kept-alive connections).
            if kind == "manual" or url is None:
                key: tuple[str, str | None, float] = ("manual", None, 0.0)
                if key not in built:
                    built[key] = ManualProvider()
            else:
                key = (kind, url, timeout)
                if key not in built:
                    built[key] = HttpProvider(url, timeout=timeout)
            return built[key]

        tenants_tree = tree.get("tenants", {})
        if not isinstance(tenants_tree, Mapping):
            raise InvalidConfig("payments.tenants", "must be a table of tenant ids")
        tenants: dict[str, PaymentProvider] = {}
        for tenant_id, own in tenants_tree.items():
            field = f"payments.tenants.{tenant_id}"
            _tenant_id(field, tenant_id)
            if not isinstance(own, Mapping):
                raise InvalidConfig(field, "must be a table of provider, url, timeout")
            _known(field, own, _ROUTE_KEYS)
            kind, url, timeout = _route_settings(field, own, base)
            if kind == "http" and url is None:
                raise InvalidConfig(
                    f"{field}.url", "the http provider needs a url (here or in payments.url)"
                )
            tenants[tenant_id] = provider(kind, url, timeout)
        breaker_tree = tree.get("breaker", {})
        if not isinstance(breaker_tree, Mapping):
            raise InvalidConfig("payments.breaker", "must be a table of breaker settings")
        _known("payments.breaker", breaker_tree, tuple(BREAKER_DEFAULTS))
        knobs: dict[str, Any] = {**BREAKER_DEFAULTS, **breaker_tree}
        knobs["failure_rate"] = percentage("payments.breaker.failure_rate", knobs["failure_rate"])
        for name in ("minimum_calls", "window_size", "half_open_calls"):
            knobs[name] = positive_int(f"payments.breaker.{name}", knobs[name])
        knobs["wait_in_open"] = seconds(
            "payments.breaker.wait_in_open", knobs["wait_in_open"], allow_zero=False
        )
        return cls(
            provider(*base),
            timeout=base[2],
            tenants=tenants,
            breaker=_breaker(knobs),
        )

    # ----------------------------------------------------------------- calls

    def provider_for(self, tenant_id: str) -> PaymentProvider:
        """The provider that serves ``tenant_id`` (its own, or the default)."""
        return self._tenants.get(tenant_id, self._default)[0]

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        """Charge ``amount`` minor units of ``currency`` for an order (see the module docstring)."""
        _check(tenant_id, amount, currency, idempotency_key)
        _token("order_id", order_id)
        provider, timeout = self._tenants.get(tenant_id, self._default)

        def call() -> Awaitable[Charge]:
            return provider.charge(
                tenant_id=tenant_id,
                order_id=order_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded(provider, timeout, call)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        """Refund ``amount`` of ``charge_id`` (same errors as :meth:`charge`)."""
        _check(tenant_id, amount, currency, idempotency_key)
        _token("charge_id", charge_id)
        provider, timeout = self._tenants.get(tenant_id, self._default)

        def call() -> Awaitable[Refund]:
            return provider.refund(
                tenant_id=tenant_id,
                charge_id=charge_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded(provider, timeout, call)

    async def aclose(self) -> None:
        """Close every provider's connections (those that have an ``aclose``)."""
        seen: set[int] = set()
        for provider, _ in (self._default, *self._tenants.values()):
            close = getattr(provider, "aclose", None)
            if close is not None and id(provider) not in seen:
                seen.add(id(provider))
                await close()

    async def _guarded(
        self, provider: PaymentProvider, limit: float, call: Callable[[], Awaitable[T]]
    ) -> T:
        async def attempt() -> T | PaymentDeclined:
            with trio.move_on_after(limit):
                try:
                    return await call()
                except PaymentDeclined as declined:
                    # The provider answered: a success for the breaker, raised below.
                    return declined
            raise ProviderUnavailable(
                f"payment provider {provider.name!r} did not answer within {limit:g}s"
            )

        try:
            outcome = await self.breaker.call(attempt)
        except CircuitOpen as exc:
            raise ProviderUnavailable(
                f"payments are suspended after provider failures ({exc.state})",
                retry_after=exc.retry_after,
            ) from exc
        if isinstance(outcome, PaymentDeclined):
            raise outcome
        return outcome


# --------------------------------------------------------------------------- validation


def _check(tenant_id: str, amount: int, currency: str, idempotency_key: str) -> None:
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidInput(f"not a valid tenant id: {tenant_id!r}", field="tenant_id")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(f"amount must be a positive integer, got {amount!r}", field="amount")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidInput(
            f"currency must be three capital letters (ISO 4217), got {currency!r}",
            field="currency",
        )
    _token("idempotency_key", idempotency_key)


def _token(field: str, value: object) -> None:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1 to 255 visible ASCII characters, got {value!r}", field=field
        )


def _timeout(field: str, value: object) -> float:
    number = seconds(field, value, allow_zero=False)
    if number > MAX_TIMEOUT:
        raise InvalidConfig(field, f"must be at most {MAX_TIMEOUT:g} seconds, got {value!r}")
    return number


def _tenant_id(field: str, value: object) -> None:
    if not isinstance(value, str) or not _TENANT_ID.fullmatch(value):
        raise InvalidConfig(field, f"{value!r} is not a valid tenant id ({TENANT_ID_PATTERN})")


def _provider_url(field: str, value: object) -> str:
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


def _known(field: str, table: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in table:
        if key not in keys:
            raise InvalidConfig(f"{field}.{key}", "unknown setting; known: " + ", ".join(keys))


def _route_settings(
    field: str, table: Mapping[str, Any], base: tuple[str, str | None, float] | None
) -> tuple[str, str | None, float]:
    """``(provider, url, timeout)`` of one table, falling back to ``base``."""
    kind = table.get("provider", "manual" if base is None else base[0])
    if kind not in _PROVIDERS:
        raise InvalidConfig(
            f"{field}.provider", f"must be one of {', '.join(map(repr, _PROVIDERS))}, got {kind!r}"
        )
    raw_url = table.get("url")
    if raw_url is not None:
        url: str | None = _provider_url(f"{field}.url", raw_url)
    else:
        url = None if base is None else base[1]
    raw_timeout = table.get("timeout", DEFAULT_TIMEOUT if base is None else base[2])
    return kind, url, _timeout(f"{field}.timeout", raw_timeout)


def _nested(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with dotted keys (``"payments.url"``) turned into nested tables."""
    out: dict[str, Any] = {}

    def put(path: list[str], value: Any) -> None:
        table = out
        for i, part in enumerate(path[:-1]):
            existing = table.setdefault(part, {})
            if not isinstance(existing, dict):
                raise InvalidConfig(".".join(path[: i + 1]), "given both as a value and a table")
            table = existing
        leaf = path[-1]
        if isinstance(value, Mapping):
            if not isinstance(table.setdefault(leaf, {}), dict):
                raise InvalidConfig(".".join(path), "given both as a value and a table")
            for key, member in value.items():
                if not isinstance(key, str):
                    raise InvalidConfig(".".join(path), f"keys must be strings, got {key!r}")
                put([*path, *key.split(".")], member)
        elif leaf in table:
            raise InvalidConfig(".".join(path), "given twice")
        else:
            table[leaf] = value

    for key, value in settings.items():
        if isinstance(key, str) and (key == "payments" or key.startswith("payments.")):
            put(key.split("."), value)
    return out


def _breaker(knobs: Mapping[str, Any]) -> CircuitBreaker:
    return CircuitBreaker(
        "payments",
        window_size=knobs["window_size"],
        minimum_calls=knobs["minimum_calls"],
        failure_rate_threshold=knobs["failure_rate"],
        wait_in_open=knobs["wait_in_open"],
        half_open_calls=knobs["half_open_calls"],
        on_transition=_log_transition,
    )


def _log_transition(change: BreakerTransition) -> None:
    level = logging.WARNING if change.to_state.value in ("open", "forced_open") else logging.INFO
    _log.log(
        level,
        "payments breaker %s -> %s: %s",
        change.from_state.value,
        change.to_state.value,
        change.reason,
    )
