"""Paying over HTTP: declined (402), unavailable (503 + Retry-After), the breaker in the tree.

The payment provider is outside the system, so it is the one thing these
tests replace: a scripted provider that approves, declines or fails on
command and charges at most once per idempotency key, as a real one does.
Whatever the provider says, a confirmed order stays confirmed until a charge
succeeds, and then it is charged once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from tests.http.conftest import Server
from triotok.modules.orders import (
    Charge,
    OrderService,
    PaymentDeclined,
    ProviderUnavailable,
    Refund,
)

from .support import ORDERS, drained, events_of, place, stocked_product


@dataclass
class ScriptedProvider:
    """A payment provider doing what ``mode`` says: approve, decline or fail."""

    mode: str = "approve"
    name: str = "scripted"
    charges: dict[str, Charge] = field(default_factory=dict)
    calls: int = 0

    async def charge(
        self, *, tenant_id: str, order_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge:
        self.calls += 1
        if self.mode == "decline":
            raise PaymentDeclined("card_declined")
        if self.mode == "fail":
            raise ProviderUnavailable("the provider is down")
        if idempotency_key not in self.charges:  # one charge per key, as real providers do
            self.charges[idempotency_key] = Charge(
                f"ch-{len(self.charges) + 1}", amount, currency, self.name
            )
        return self.charges[idempotency_key]

    async def refund(
        self, *, tenant_id: str, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> Refund:
        if self.mode == "fail":
            raise ProviderUnavailable("the provider is down")
        return Refund(f"re-{charge_id}", charge_id, amount, currency, self.name)


@pytest.fixture
def provider(server: Server) -> ScriptedProvider:
    scripted = ScriptedProvider()
    payments: Any = server.app.context.get(OrderService).payments
    # The running node's gateway, routed to the scripted provider for every tenant.
    payments._default = payments._route(scripted)
    return scripted


async def _confirmed(server: Server, key: str) -> str:
    mug = await stocked_product(server, key, 10, price=700)
    order = (await place(server, key, [(mug, 2)])).json()
    assert order["status"] == "confirmed"
    return str(order["id"])


async def test_a_declined_payment_is_402_and_leaves_the_order_confirmed(
    server: Server, provider: ScriptedProvider
) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        order_id = await _confirmed(server, admin)
        provider.mode = "decline"
        declined = await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)
        assert declined.status_code == 402, declined.text
        assert declined.headers["content-type"] == "application/problem+json"
        assert (declined.json()["code"], declined.json()["reason"]) == (
            "payment_declined",
            "card_declined",
        )
        order = (await server.client.get(f"{ORDERS}/{order_id}", headers=auth)).json()
        assert (order["status"], order["version"], order["payment"]) == ("confirmed", 2, None)
        provider.mode = "approve"
        paid = await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)
        assert paid.status_code == 200
        assert paid.json()["payment"] == {
            "charge_id": "ch-1",
            "provider": "scripted",
            "amount": 1400,
            "currency": "EUR",
        }
        await drained(server)
        assert (await events_of(server, order_id)).count("order.paid") == 1


async def test_an_unavailable_provider_is_503_with_retry_after_and_the_order_stays_confirmed(
    server: Server, provider: ScriptedProvider
) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        order_id = await _confirmed(server, admin)
        provider.mode = "fail"
        down = await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "payment_unavailable"
        assert int(down.headers["Retry-After"]) >= 1
        order = (await server.client.get(f"{ORDERS}/{order_id}", headers=auth)).json()
        assert order["status"] == "confirmed"
        # A paid order whose refund cannot be made stays paid.
        provider.mode = "approve"
        assert (await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)).is_success
        provider.mode = "fail"
        cancel = await server.client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=auth)
        assert cancel.status_code == 503
        order = (await server.client.get(f"{ORDERS}/{order_id}", headers=auth)).json()
        assert order["status"] == "paid"


async def test_the_breaker_opens_shows_in_the_tree_and_answers_503_without_calling(
    server: Server, provider: ScriptedProvider
) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    breaker = server.app.context.get(OrderService).payments.breaker
    tree_path = "/app/modules/orders/payments"
    with trio.fail_after(90):
        order_id = await _confirmed(server, admin)
        shown = server.app.system.tree(prefix=tree_path)["components"]["payments"]
        assert shown["state"] == "closed"
        provider.mode = "fail"
        for _ in range(50):
            await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)
            if breaker.state.value == "open":
                break
        assert breaker.state.value == "open"
        shown = server.app.system.tree(prefix=tree_path)["components"]["payments"]
        assert shown["state"] == "open"
        calls = provider.calls
        provider.mode = "approve"
        refused = await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)
        assert refused.status_code == 503
        assert refused.json()["code"] == "payment_unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        assert provider.calls == calls  # an open breaker fails fast
        order = (await server.client.get(f"{ORDERS}/{order_id}", headers=auth)).json()
        assert order["status"] == "confirmed"
        breaker.reset()
        assert (await server.client.post(f"{ORDERS}/{order_id}/pay", headers=auth)).is_success


async def test_paying_with_an_idempotency_key_charges_once(
    server: Server, provider: ScriptedProvider
) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        order_id = await _confirmed(server, admin)
        url = f"{ORDERS}/{order_id}/pay"
        provider.mode = "fail"
        down = await server.client.post(url, headers={**auth, "Idempotency-Key": "pay-1"})
        assert down.status_code == 503
        # A 5xx did nothing: the same key may try again, and this time it works.
        provider.mode = "approve"
        first = await server.client.post(url, headers={**auth, "Idempotency-Key": "pay-1"})
        assert first.status_code == 200, first.text
        again = await server.client.post(url, headers={**auth, "Idempotency-Key": "pay-1"})
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert again.headers["ETag"] == first.headers["ETag"]
        # Without the key, a second pay is an illegal transition, not a second charge.
        second = await server.client.post(url, headers=auth)
        assert second.status_code == 409
        assert list(provider.charges) == [f"{order_id}:charge"]
        await drained(server)
        assert (await events_of(server, order_id)).count("order.paid") == 1
