"""``HttpProvider``: a payment service that speaks JSON over HTTP (the ``"http"`` provider)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ..._json import InvalidJson, InvalidText, loads
from ..._util import positive_int
from ._payment_model import (
    DEFAULT_TIMEOUT,
    TOKEN,
    Charge,
    PaymentDeclined,
    ProviderUnavailable,
    Refund,
    check_timeout,
    provider_url,
)

if TYPE_CHECKING:
    import httpx

__all__ = ("HttpProvider",)


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
    ``transport`` is an httpx transport for what the URL cannot say (client
    certificates, a proxy); the environment's proxy settings are not read.
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
        self.url = provider_url("url", url)
        self.timeout = check_timeout("timeout", timeout)
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
        if not isinstance(ident, str) or not TOKEN.fullmatch(ident):
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
