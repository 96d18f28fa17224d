"""The payments breaker on the operators' page: open while the provider fails, then closed.

A real server, a real headless Chromium, a real local provider; the
breaker's open time is skipped with ``MockClock.jump`` (a clock that runs at
real speed otherwise, so the server and the browser behave as usual).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from trio.testing import MockClock

from tests.http.conftest import Server
from tests.http.test_system_page import browse
from tests.modules.orders.provider import Mode, ProviderServer
from triotok import Actor
from triotok.modules.orders import Payments, ProviderUnavailable
from triotok.resilience import BreakerState


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


@pytest.fixture
def clock() -> MockClock:
    """Real speed, plus ``jump``: pytest-trio runs the test on any Clock fixture."""
    return MockClock(rate=1.0)


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


def row_text(dom: str, path: str) -> str:
    """The drawn row of ``path``, as its visible text."""
    found = re.search(rf'<div class="node[^"]*" data-path="{re.escape(path)}".*?</div>', dom, re.S)
    assert found is not None, f"{path} is not drawn"
    return re.sub(r"<[^>]+>", "", found[0])


async def pay(payments: Payments, order: str) -> None:
    await payments.charge(
        tenant_id="acme",
        order_id=order,
        amount=100,
        currency="EUR",
        idempotency_key=f"{order}:charge",
    )


@pytest.mark.chromium
async def test_the_page_shows_the_breaker_open_then_closed_again(
    server: Server, provider: ProviderServer, clock: MockClock, tmp_path: Path
) -> None:
    payments = Payments.from_settings(
        {
            "payments": {
                "provider": "http",
                "url": provider.url,
                "breaker": {
                    "minimum_calls": 2,
                    "window_size": 2,
                    "wait_in_open": 30,
                    "half_open_calls": 1,
                },
            }
        }
    )

    class Orders(Actor):
        async def on_start(self) -> None:
            self.ctx.register("payments", payments.breaker)

        async def receive(self, message: object) -> None:
            return None

    try:
        await server.app.system.spawn(Orders, name="orders")
        key = await server.operator()
        provider.mode = Mode.FAIL
        for order in ("o-1", "o-2", "o-3"):  # two failures open it; the third is rejected
            with pytest.raises(ProviderUnavailable):
                await pay(payments, order)
        assert payments.breaker.state is BreakerState.OPEN
        assert provider.requests() == 2

        opened = row_text(
            await browse(tmp_path, f"{server.url}/system#key={key}", "--dump-dom"), "/app/orders"
        )
        assert "breaker payments: open" in opened
        assert "failure rate 100.0%" in opened
        assert "calls 0 ok, 2 failed, 1 rejected" in opened

        provider.mode = Mode.APPROVE  # the provider recovers; the open time passes
        clock.jump(30)
        await pay(payments, "o-4")  # the trial call closes it
        await pay(payments, "o-5")
        assert payments.breaker.state is BreakerState.CLOSED

        closed = row_text(
            await browse(tmp_path, f"{server.url}/system#key={key}", "--dump-dom"), "/app/orders"
        )
        assert "breaker payments: closed" in closed
        assert "calls 1 ok, 0 failed, 1 rejected" in closed
        assert "failure rate" not in closed  # one call buffered: fewer than minimum_calls
    finally:
        await payments.aclose()
