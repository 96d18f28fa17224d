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

Every name is importable from here; they live in ``_payment_model.py``
(errors, results, the protocol, the manual provider), ``_http_provider.py``
and this file (the gateway and its settings).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import trio

from ..._exceptions import InvalidConfig, InvalidInput
from ..._util import TENANT_ID_PATTERN, percentage, positive_int, seconds
from ...resilience import BreakerTransition, CircuitBreaker, CircuitOpen
from ...telemetry import span
from ._http_provider import HttpProvider as HttpProvider
from ._payment_model import DEFAULT_TIMEOUT, TENANT_ID, check_timeout, check_token, provider_url
from ._payment_model import Charge as Charge
from ._payment_model import ManualProvider as ManualProvider
from ._payment_model import PaymentDeclined as PaymentDeclined
from ._payment_model import PaymentError as PaymentError
from ._payment_model import PaymentProvider as PaymentProvider
from ._payment_model import ProviderUnavailable as ProviderUnavailable
from ._payment_model import Refund as Refund

__all__ = (
    "BREAKER_DEFAULTS",
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
_CURRENCY = re.compile(r"[A-Z]{3}")


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
        self._timeout = check_timeout("timeout", timeout)
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
        return provider, self._timeout if own is None else check_timeout("timeout", own)

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
        check_token("order_id", order_id)
        provider, timeout = self._tenants.get(tenant_id, self._default)

        def call() -> Awaitable[Charge]:
            return provider.charge(
                tenant_id=tenant_id,
                order_id=order_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded("charge", tenant_id, provider, timeout, call)

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        """Refund ``amount`` of ``charge_id`` (same errors as :meth:`charge`)."""
        _check(tenant_id, amount, currency, idempotency_key)
        check_token("charge_id", charge_id)
        provider, timeout = self._tenants.get(tenant_id, self._default)

        def call() -> Awaitable[Refund]:
            return provider.refund(
                tenant_id=tenant_id,
                charge_id=charge_id,
                amount=amount,
                currency=currency,
                idempotency_key=idempotency_key,
            )

        return await self._guarded("refund", tenant_id, provider, timeout, call)

    async def aclose(self) -> None:
        """Close every provider's connections (those that have an ``aclose``)."""
        seen: set[int] = set()
        for provider, _ in (self._default, *self._tenants.values()):
            close = getattr(provider, "aclose", None)
            if close is not None and id(provider) not in seen:
                seen.add(id(provider))
                await close()

    async def _guarded(
        self,
        operation: str,
        tenant_id: str,
        provider: PaymentProvider,
        limit: float,
        call: Callable[[], Awaitable[T]],
    ) -> T:
        # A client span per provider call (when the caller is traced): its outcome is
        # one of ok, declined, unavailable (a failure, a timeout or an open breaker).
        attributes = {
            "payment.operation": operation,
            "payment.provider": provider.name,
            "triotok.tenant.id": tenant_id,
        }
        with span(f"payments {operation}", kind="client", attributes=attributes) as traced:
            try:
                result = await self._attempt(provider, limit, call)
            except PaymentDeclined:
                if traced is not None:
                    traced.set_attribute("payment.outcome", "declined")
                raise
            except ProviderUnavailable as exc:
                if traced is not None:
                    traced.set_attribute("payment.outcome", "unavailable")
                    traced.set_attribute("error.type", type(exc.__cause__ or exc).__name__)
                raise
            if traced is not None:
                traced.set_attribute("payment.outcome", "ok")
            return result

    async def _attempt(
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
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise InvalidInput(f"not a valid tenant id: {tenant_id!r}", field="tenant_id")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(f"amount must be a positive integer, got {amount!r}", field="amount")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidInput(
            f"currency must be three capital letters (ISO 4217), got {currency!r}",
            field="currency",
        )
    check_token("idempotency_key", idempotency_key)


def _tenant_id(field: str, value: object) -> None:
    if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
        raise InvalidConfig(field, f"{value!r} is not a valid tenant id ({TENANT_ID_PATTERN})")


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
        url: str | None = provider_url(f"{field}.url", raw_url)
    else:
        url = None if base is None else base[1]
    raw_timeout = table.get("timeout", DEFAULT_TIMEOUT if base is None else base[2])
    return kind, url, check_timeout(f"{field}.timeout", raw_timeout)


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
