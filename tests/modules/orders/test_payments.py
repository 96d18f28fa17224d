"""The payment gateway against a real local provider: answers, timeouts, the breaker, idempotency.

Only the provider is simulated (``tests/modules/orders/provider.py``, a real
HTTP server on 127.0.0.1); the client, the breaker and the timeouts are the
production ones. Breaker waits run on ``MockClock`` (``jump``), so nothing
waits for real except the one test of a real socket that hangs, which a
short timeout bounds.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from tests.modules.orders.provider import Mode, ProviderServer
from triotok import Actor, open_system
from triotok._exceptions import InvalidConfig, InvalidInput
from triotok.http._problems import problem_for
from triotok.modules.orders import (
    Charge,
    HttpProvider,
    ManualProvider,
    PaymentDeclined,
    Payments,
    ProviderUnavailable,
    Refund,
)
from triotok.resilience import BreakerState, CircuitBreaker

ROOT = Path(__file__).resolve().parents[3]
ORDER = "o-1"
KEY = f"{ORDER}:charge"


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


class Gateways:
    """Every gateway a test made, closed when it ends, passed or failed (no socket left to GC)."""

    def __init__(self) -> None:
        self.made: list[Payments] = []

    def __call__(self, payments: Payments) -> Payments:
        self.made.append(payments)
        return payments

    def http(self, provider: ProviderServer, **breaker: Any) -> Payments:
        """Payments whose default provider is the local server (breaker knobs from settings)."""
        settings: dict[str, Any] = {
            "payments.provider": "http",
            "payments.url": provider.url,
            "payments.timeout": 2,
        }
        settings.update({f"payments.breaker.{k}": v for k, v in breaker.items()})
        return self(Payments.from_settings(settings))


@pytest.fixture
async def gateway() -> AsyncIterator[Gateways]:
    made = Gateways()
    try:
        yield made
    finally:
        for payments in made.made:
            await payments.aclose()


async def charge(payments: Payments, order: str = ORDER, *, tenant: str = "acme") -> Charge:
    return await payments.charge(
        tenant_id=tenant,
        order_id=order,
        amount=1250,
        currency="EUR",
        idempotency_key=f"{order}:charge",
    )


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# ------------------------------------------------------------------ the answers


async def test_an_approval_is_a_charge_and_the_key_travels_as_a_header(
    gateway: Gateways, provider: ProviderServer
) -> None:
    payments = gateway.http(provider)
    with trio.fail_after(10):
        got = await charge(payments)
    assert got == Charge("ch_1", 1250, "EUR", "http")
    [seen] = provider.received
    assert seen.path == "/charges"
    assert seen.idempotency_key == KEY
    assert seen.body == {"tenant_id": "acme", "order_id": ORDER, "amount": 1250, "currency": "EUR"}
    assert seen.headers["Content-Type"] == "application/json"
    assert provider.performed(KEY) == 1


async def test_a_refund(gateway: Gateways, provider: ProviderServer) -> None:
    payments = gateway.http(provider)
    with trio.fail_after(10):
        got = await payments.refund(
            tenant_id="acme",
            charge_id="ch_9",
            amount=500,
            currency="EUR",
            idempotency_key=f"{ORDER}:refund",
        )
    assert got == Refund("re_1", "ch_9", 500, "EUR", "http")
    [seen] = provider.received
    assert (seen.path, seen.body["charge_id"]) == ("/refunds", "ch_9")


async def test_a_decline_says_why_and_is_not_a_breaker_failure(
    gateway: Gateways, provider: ProviderServer
) -> None:
    provider.decline_with("card_expired")
    payments = gateway.http(provider, minimum_calls=3, window_size=3)
    with trio.fail_after(10):
        for i in range(6):
            with pytest.raises(PaymentDeclined) as declined:
                await charge(payments, f"o-{i}")
            assert declined.value.reason == "card_expired"
    stats = payments.breaker.statistics()
    assert stats.state is BreakerState.CLOSED
    assert (stats.failed_calls, stats.successful_calls) == (0, 3)
    assert sum(provider.performed(f"o-{i}:charge") for i in range(6)) == 0
    problem = problem_for(declined.value)
    assert (problem.status, problem.code, problem.extra) == (
        402,
        "payment_declined",
        {"reason": "card_expired"},
    )


@pytest.mark.parametrize("mode", [Mode.FAIL, Mode.MALFORMED])
async def test_a_failure_or_a_malformed_answer_is_unavailable(
    gateway: Gateways, provider: ProviderServer, mode: Mode
) -> None:
    provider.mode = mode
    payments = gateway.http(provider)
    with trio.fail_after(10), pytest.raises(ProviderUnavailable) as unavailable:
        await charge(payments)
    assert unavailable.value.retry_after is None
    assert provider.url not in str(unavailable.value)  # answered to clients: no URL in it
    assert payments.breaker.statistics().failed_calls == 1
    problem = problem_for(unavailable.value)
    assert (problem.status, problem.code) == (503, "payment_unavailable")
    assert problem.headers == {"Retry-After": "1"}


async def test_a_refused_connection_is_unavailable(gateway: Gateways) -> None:
    url = closed_port_url()
    payments = gateway(Payments(HttpProvider(url, timeout=2)))
    with trio.fail_after(10), pytest.raises(ProviderUnavailable) as unavailable:
        await charge(payments)
    assert "could not be reached" in str(unavailable.value)
    assert url.rsplit(":", 1)[1] not in str(unavailable.value)
    assert payments.breaker.statistics().failed_calls == 1


async def test_a_provider_that_hangs_is_cut_off_by_the_timeout(
    gateway: Gateways, provider: ProviderServer
) -> None:
    # A real socket that never answers: a real (short) timeout, bounded by fail_after.
    provider.mode = Mode.HANG
    payments = gateway(Payments(HttpProvider(provider.url, timeout=0.2)))
    with trio.fail_after(10), pytest.raises(ProviderUnavailable) as unavailable:
        await charge(payments)
    assert provider.hanging == 1  # the provider still holds the request: we did not wait
    assert "did not answer within 0.2s" in str(unavailable.value)
    assert payments.breaker.statistics().failed_calls == 1
    assert provider.performed(KEY) == 0


async def test_the_gateway_timeout_bounds_any_provider(autojump_clock: MockClock) -> None:
    class Stuck:
        name = "stuck"

        async def charge(self, **_: Any) -> Charge:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        async def refund(self, **_: Any) -> Refund:
            raise AssertionError("not called")

    payments = Payments(Stuck(), timeout=3)
    with pytest.raises(ProviderUnavailable, match="'stuck' did not answer within 3s"):
        await charge(payments)
    assert trio.current_time() == pytest.approx(3)


# ------------------------------------------------------------------ idempotency


async def test_a_retried_charge_is_charged_once(
    gateway: Gateways, provider: ProviderServer
) -> None:
    payments = gateway.http(provider)
    with trio.fail_after(10):
        first = await charge(payments)
        again = await charge(payments)
    assert first == again
    assert (provider.requests(KEY), provider.performed(KEY)) == (2, 1)


async def test_a_charge_whose_answer_was_lost_is_not_charged_again(
    gateway: Gateways, provider: ProviderServer
) -> None:
    # The provider charges, then the answer never arrives: the caller sees a timeout,
    # retries with the same key, and gets the first charge back.
    provider.then(Mode.CHARGE_THEN_HANG)
    payments = gateway(Payments(HttpProvider(provider.url, timeout=0.5)))
    with trio.fail_after(10):
        with pytest.raises(ProviderUnavailable):
            await charge(payments)
        got = await charge(payments)
    assert got == Charge("ch_1", 1250, "EUR", "http")
    assert (provider.requests(KEY), provider.performed(KEY)) == (2, 1)


async def test_a_failed_attempt_charges_nothing_and_the_retry_charges_once(
    gateway: Gateways, provider: ProviderServer
) -> None:
    provider.then(Mode.FAIL, Mode.MALFORMED)
    payments = gateway.http(provider)
    with trio.fail_after(10):
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await charge(payments)
        got = await charge(payments)
    assert got.charge_id == "ch_1"
    assert (provider.requests(KEY), provider.performed(KEY)) == (3, 1)


# ------------------------------------------------------------------ the breaker


async def test_the_breaker_opens_fails_fast_half_opens_and_closes(
    gateway: Gateways, provider: ProviderServer, mock_clock: MockClock
) -> None:
    payments = gateway.http(
        provider, minimum_calls=4, window_size=4, wait_in_open=30, half_open_calls=2
    )
    provider.mode = Mode.FAIL
    # MockClock: time moves only by jump(), so no fail_after here; a hang would show as one.
    for i in range(4):
        with pytest.raises(ProviderUnavailable):
            await charge(payments, f"o-{i}")
    assert payments.breaker.state is BreakerState.OPEN
    asked = provider.requests()

    with pytest.raises(ProviderUnavailable) as rejected:
        await charge(payments, "o-5")
    assert rejected.value.retry_after == 30.0
    mock_clock.jump(12)
    with pytest.raises(ProviderUnavailable) as rejected:
        await charge(payments, "o-6")
    assert rejected.value.retry_after == 18.0
    assert provider.requests() == asked  # an open breaker calls nobody
    problem = problem_for(rejected.value)
    assert (problem.status, problem.headers) == (503, {"Retry-After": "18"})

    provider.mode = Mode.APPROVE  # the provider recovers
    mock_clock.jump(18)
    assert payments.breaker.state is BreakerState.HALF_OPEN
    await charge(payments, "o-7")
    assert payments.breaker.state is BreakerState.HALF_OPEN
    await charge(payments, "o-8")
    assert payments.breaker.state is BreakerState.CLOSED
    assert provider.requests() == asked + 2
    stats = payments.breaker.statistics().as_dict()
    assert stats["not_permitted_calls"] == 2
    assert stats["transitions"] == {"closed->open": 1, "open->half_open": 1, "half_open->closed": 1}


async def test_failing_trial_calls_open_it_again(
    gateway: Gateways, provider: ProviderServer, mock_clock: MockClock
) -> None:
    payments = gateway.http(provider, minimum_calls=2, window_size=2, wait_in_open=10)
    provider.mode = Mode.FAIL
    for i in range(2):
        with pytest.raises(ProviderUnavailable):
            await charge(payments, f"o-{i}")
    mock_clock.jump(10)
    for i in range(2):  # half_open_calls defaults to 2
        with pytest.raises(ProviderUnavailable):
            await charge(payments, f"t-{i}")
    assert payments.breaker.state is BreakerState.OPEN
    assert payments.breaker.statistics().failure_rate == 100.0


async def test_the_breaker_shows_in_the_tree_of_the_actor_that_registers_it(
    gateway: Gateways, provider: ProviderServer
) -> None:
    payments = gateway.http(provider, minimum_calls=2, window_size=2)

    class Gateway(Actor):
        async def on_start(self) -> None:
            self.ctx.register("payments", payments.breaker)

        async def receive(self, message: object) -> None:
            return None

    async with open_system(name="app") as system:
        await system.spawn(Gateway, name="gateway")
        await trio.testing.wait_all_tasks_blocked()
        before = system.tree(prefix="/app/gateway", depth=0)["components"]["payments"]
        provider.mode = Mode.FAIL
        with trio.fail_after(10):
            for i in range(2):
                with pytest.raises(ProviderUnavailable):
                    await charge(payments, f"o-{i}")
        after = system.tree(prefix="/app/gateway", depth=0)["components"]["payments"]
    assert (before["name"], before["state"], before["failure_rate"]) == ("payments", "closed", -1.0)
    assert after["state"] == "open"
    assert after["failure_rate"] == 100.0
    assert (after["buffered_calls"], after["failed_calls"]) == (2, 2)


# ------------------------------------------------------------------ routes per tenant


async def test_a_tenant_override_routes_only_that_tenant(
    gateway: Gateways, provider: ProviderServer
) -> None:
    payments = gateway(
        Payments.from_settings(
            {"payments": {"tenants": {"acme": {"provider": "http", "url": provider.url}}}}
        )
    )
    assert isinstance(payments.provider_for("acme"), HttpProvider)
    assert isinstance(payments.provider_for("globex"), ManualProvider)
    with trio.fail_after(10):
        paid = await charge(payments, "o-a", tenant="acme")
        manual = await charge(payments, "o-g", tenant="globex")
    assert (paid.provider, paid.charge_id) == ("http", "ch_1")
    assert manual == Charge("manual-o-g", 1250, "EUR", "manual")
    assert [r.body["tenant_id"] for r in provider.received] == ["acme"]


def test_settings_nested_or_dotted_name_the_same_routes() -> None:
    nested = Payments.from_settings(
        {
            "payments": {
                "provider": "http",
                "url": "https://pay.example/v1/",
                "timeout": 2,
                "tenants": {
                    "acme": {"timeout": 7},
                    "globex": {"provider": "manual"},
                    "initech": {"url": "https://other.example"},
                    "umbrella": {},
                },
                "breaker": {"wait_in_open": 5, "minimum_calls": 3},
            },
            "currency": "EUR",  # the orders module's own setting: left alone
        }
    )
    dotted = Payments.from_settings(
        {
            "payments.provider": "http",
            "payments.url": "https://pay.example/v1/",
            "payments.timeout": 2,
            "payments.tenants.acme.timeout": 7,
            "payments.tenants.globex.provider": "manual",
            "payments.tenants.initech.url": "https://other.example",
            "payments.tenants.umbrella": {},
            "payments.breaker": {"wait_in_open": 5, "minimum_calls": 3},
        }
    )
    for payments in (nested, dotted):
        default = payments.provider_for("anyone")
        assert isinstance(default, HttpProvider)
        assert (default.url, default.timeout) == ("https://pay.example/v1", 2.0)
        acme = payments.provider_for("acme")
        assert isinstance(acme, HttpProvider)
        assert (acme.url, acme.timeout) == ("https://pay.example/v1", 7.0)
        assert isinstance(payments.provider_for("globex"), ManualProvider)
        initech = payments.provider_for("initech")
        assert isinstance(initech, HttpProvider)
        assert (initech.url, initech.timeout) == ("https://other.example", 2.0)
        assert payments.provider_for("umbrella") is default  # same route, one provider
        policy = payments.breaker.policy
        assert (policy.wait_in_open, policy.minimum_calls) == (5.0, 3)
        assert payments.breaker.name == "payments"


def test_the_defaults_are_manual_with_the_documented_breaker() -> None:
    payments = Payments.from_settings({})
    assert isinstance(payments.provider_for("acme"), ManualProvider)
    policy = payments.breaker.policy
    assert (
        policy.failure_rate_threshold,
        policy.minimum_calls,
        policy.window_size,
        policy.wait_in_open,
        policy.half_open_calls,
    ) == (50.0, 5, 20, 30.0, 2)


@pytest.mark.parametrize(
    ("settings", "field", "says"),
    [
        ({"payments.provider": "stripe"}, "payments.provider", "must be one of 'manual', 'http'"),
        ({"payments.provider": "http"}, "payments.url", "required when payments.provider"),
        ({"payments.url": "ftp://pay.example"}, "payments.url", "http:// or https://"),
        ({"payments.url": "https://u:p@pay.example"}, "payments.url", "credentials"),
        ({"payments.url": "https://pay.example/?k=1"}, "payments.url", "no query"),
        ({"payments.url": "https://pay.example:99999"}, "payments.url", "not a valid URL"),
        ({"payments.url": 5}, "payments.url", "must be a URL"),
        ({"payments.timeout": 0}, "payments.timeout", "must be positive"),
        ({"payments.timeout": "5"}, "payments.timeout", "must be a number of seconds"),
        ({"payments.timeout": float("nan")}, "payments.timeout", "must be finite"),
        ({"payments.timeout": 301}, "payments.timeout", "at most 300"),
        ({"payments.timout": 5}, "payments.timout", "unknown setting; known: provider"),
        ({"payments": "http"}, "payments", "must be a table"),
        ({"payments.tenants": ["acme"]}, "payments.tenants", "must be a table"),
        ({"payments.tenants.a b.provider": "http"}, "payments.tenants.a b", "valid tenant id"),
        ({"payments.tenants.acme": "http"}, "payments.tenants.acme", "must be a table"),
        ({"payments.tenants.acme.provider": "http"}, "payments.tenants.acme.url", "needs a url"),
        ({"payments.tenants.acme.breaker": {}}, "payments.tenants.acme.breaker", "unknown"),
        ({"payments.tenants.acme.timeout": -1}, "payments.tenants.acme.timeout", "negative"),
        ({"payments.breaker.failure_rate": 0}, "payments.breaker.failure_rate", "percentage"),
        ({"payments.breaker.minimum_calls": 0}, "payments.breaker.minimum_calls", "at least 1"),
        ({"payments.breaker.wait_in_open": True}, "payments.breaker.wait_in_open", "seconds"),
        ({"payments.breaker.slow": 1}, "payments.breaker.slow", "unknown setting"),
        (
            {"payments": {"url": "http://a.example"}, "payments.url": "http://b.example"},
            "payments.url",
            "given twice",
        ),
        (
            {"payments.tenants": "x", "payments.tenants.acme.url": "http://a.example"},
            "payments.tenants",
            "both as a value and a table",
        ),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidConfig) as refused:
        Payments.from_settings(settings)
    assert refused.value.field == field
    assert says in refused.value.reason


# ------------------------------------------------------------------ input and the manual provider


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"tenant_id": "../etc"}, "tenant_id"),
        ({"order_id": "o\n1"}, "order_id"),
    ],
)
async def test_bad_input_is_refused_before_any_call(
    gateway: Gateways, provider: ProviderServer, change: dict[str, Any], field: str
) -> None:
    payments = gateway.http(provider)
    request: dict[str, Any] = {
        "tenant_id": "acme",
        "order_id": ORDER,
        "amount": 100,
        "currency": "EUR",
        "idempotency_key": KEY,
    }
    with pytest.raises(InvalidInput) as refused:
        await payments.charge(**{**request, **change})
    assert refused.value.extra["field"] == field
    assert provider.requests() == 0
    assert payments.breaker.statistics().buffered_calls == 0


async def test_the_manual_provider_approves_with_stable_ids() -> None:
    payments = Payments()  # manual by default
    first = await charge(payments)
    assert first == await charge(payments) == Charge("manual-o-1", 1250, "EUR", "manual")
    refund = await payments.refund(
        tenant_id="acme",
        charge_id=first.charge_id,
        amount=1250,
        currency="EUR",
        idempotency_key=f"{ORDER}:refund",
    )
    assert refund == Refund("manual-refund-o-1", "manual-o-1", 1250, "EUR", "manual")
    assert payments.breaker.statistics().successful_calls == 3


async def test_an_unexpected_provider_error_is_a_breaker_failure_and_is_not_hidden() -> None:
    class Broken:
        name = "broken"

        async def charge(self, **_: Any) -> Charge:
            raise KeyError("bug")

        async def refund(self, **_: Any) -> Refund:
            raise KeyError("bug")

    payments = Payments(Broken(), breaker=CircuitBreaker("payments", minimum_calls=1))
    with pytest.raises(KeyError):
        await charge(payments)
    assert payments.breaker.state is BreakerState.OPEN


def test_http_provider_refuses_a_bad_url_or_timeout() -> None:
    with pytest.raises(InvalidConfig, match="url: must be an http"):
        HttpProvider("pay.example")
    with pytest.raises(InvalidConfig, match="timeout: must be positive"):
        HttpProvider("http://pay.example", timeout=0)


# ------------------------------------------------------------------ the provider as a process


async def test_the_provider_runs_as_a_process_steered_over_http(gateway: Gateways) -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.modules.orders.provider", "--port", "0"],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1024)
                assert chunk, "the provider exited before announcing itself"
                line += chunk
            url = json.loads(line)["url"]
            payments = gateway(Payments(HttpProvider(url, timeout=5)))
            assert (await charge(payments)).charge_id == "ch_1"
            async with httpx.AsyncClient(base_url=url) as control:
                steered = await control.post("/control", json={"mode": "fail"})
                assert steered.json() == {"mode": "fail"}
                with pytest.raises(ProviderUnavailable):
                    await charge(payments, "o-2")
                stats = (await control.get("/stats")).json()
            assert stats == {
                "performed": {KEY: 1},
                "requests": {KEY: 1, "o-2:charge": 1},
            }
            await payments.aclose()
        finally:
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
