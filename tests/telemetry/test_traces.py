"""One trace from an HTTP mutation to the event handler, exported over OTLP/HTTP to a real receiver.

Creating a product must give one trace holding, correctly parented: the
HTTP server span (a child of the client's ``traceparent``), the entity's
activation and message spans, its store transaction and the outbox write
(a producer span), the relay's delivery (a consumer span continuing
``Envelope.trace_id``), the bus's handling in the search module's group and the
projection's own message span and transaction (the real read model).
"""

from __future__ import annotations

import itertools
import json
import secrets
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.appnode import node_env, start_node
from tests.telemetry.otlp import ReceivedSpan, otlp_receiver
from triotok.app import MODULES, Application, open_application
from triotok.config import load_settings
from triotok.modules.access import ApiKeyRepository, Role
from triotok.modules.tenants import TenantRepository

PRODUCT = {"sku": "MUG-1", "title": "Mug", "price": 1290, "currency": "EUR"}


def settings_for(tmp_path: Path, endpoint: str, **extra: Any) -> Any:
    return load_settings(
        flags={
            "port": 0,
            "store_url": f"sqlite:///{tmp_path}/triotok.db",
            "rate_limit_per_ip": 100_000,
            "rate_limit_per_key": 100_000,
            "graceful_timeout": 2.0,
            "tracing": "otlp",
            "otlp_endpoint": endpoint,
            **extra,
        }
    )


async def admin_key(app: Application, tenant_id: str) -> str:
    tenants = app.context.get(TenantRepository)
    if await tenants.get(tenant_id) is None:
        await tenants.create(tenant_id, tenant_id.title(), actor="test")
    _, plaintext = await app.context.get(ApiKeyRepository).create(
        tenant_id, Role.ADMIN, actor="test"
    )
    return plaintext


async def relay_drained(app: Application) -> None:
    relay = app.system.runtime.lookup("/app/transport/relay").actor
    await relay.drain()


def one(spans: list[ReceivedSpan], name: str, **attributes: Any) -> ReceivedSpan:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, sorted(s.name for s in spans))
    return found[0]


def assert_product_trace(
    spans: list[ReceivedSpan], client_span_id: str, tenant: str = "acme"
) -> dict[str, ReceivedSpan]:
    """The chain of the module docstring, each span the child of the one before it."""
    server = one(spans, "POST /api/products")
    assert (server.kind, server.parent_span_id) == ("server", client_span_id)
    assert server.attributes["http.route"] == "/api/products"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["triotok.tenant.id"] == tenant
    message = one(spans, "CreateProduct /app/modules/commerce/products")
    activation = one(spans, "activate /app/modules/commerce/products")
    assert activation.parent_span_id == message.parent_span_id
    write = next(
        s for s in spans if s.name == "db transaction" and s.parent_span_id == message.span_id
    )
    publish = one(spans, "outbox publish product.created")
    deliver = one(spans, "outbox deliver product.created")
    handle = one(spans, "bus handle product.created", **{"messaging.consumer.group.name": "search"})
    # The search module's projection of product.* events (its second subscription).
    indexer = one(spans, "Envelope /app/modules/search/on-2")
    index_write = next(
        s for s in spans if s.name == "db transaction" and s.parent_span_id == indexer.span_id
    )
    chain = [server, message, write, publish, deliver, handle, indexer, index_write]
    for parent, child in itertools.pairwise(chain):
        assert child.parent_span_id == parent.span_id, (parent.name, child.name)
    assert (publish.kind, deliver.kind, handle.kind) == ("producer", "consumer", "consumer")
    statements = [s for s in spans if s.parent_span_id == write.span_id and s.kind == "client"]
    # A create is one round trip: its deferred statements (the product, the
    # outbox row, the audit row) in one batch, sent with the commit.
    [batch] = [s for s in statements if s.name == "db BATCH"]
    assert batch.attributes["db.operation.batch.size"] >= 3
    assert "INSERT INTO commerce_products" in str(batch.attributes["db.query.text"])
    assert all(s.attributes["db.system"] == "sqlite" for s in statements)
    # The statement's text with its placeholders, never the values bound to them.
    texts = " ".join(str(s.attributes["db.query.text"]) for s in statements)
    assert "$1" in texts
    assert PRODUCT["sku"] not in texts
    return {
        "server": server,
        "message": message,
        "deliver": deliver,
        "handle": handle,
    }


async def test_one_trace_from_a_product_creation_to_the_indexer(tmp_path: Path) -> None:
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    with otlp_receiver() as receiver:
        settings = settings_for(tmp_path, receiver.url)
        async with open_application(settings, modules=MODULES) as app:
            key = await admin_key(app, "acme")
            async with httpx.AsyncClient(base_url=app.url, timeout=10.0) as client:
                with trio.fail_after(30):
                    created = await client.post(
                        "/api/products",
                        json=PRODUCT,
                        headers={
                            "Authorization": f"Bearer {key}",
                            "traceparent": f"00-{trace_id}-{client_span}-01",
                            "tracestate": "vendor=1",
                        },
                    )
                    assert created.status_code == 201, created.text
                    await relay_drained(app)
            returned = created.headers["traceparent"].split("-")
            assert returned[1] == trace_id
            assert returned[2] != client_span
            assert created.headers["tracestate"] == "vendor=1"
            telemetry = app.services.telemetry
            assert telemetry is not None
            await telemetry.flush()
        spans = receiver.trace(trace_id)
    found = assert_product_trace(spans, client_span)
    assert found["server"].span_id == returned[2]
    assert {s.instance for s in spans} == {found["server"].instance}


@pytest.mark.slow
async def test_one_trace_across_two_node_processes(tmp_path: Path) -> None:
    """Node A serves the request and writes the outbox row; node B's relay and indexer handle it."""
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    with otlp_receiver() as receiver:
        settings = {
            "store_url": f"sqlite:///{tmp_path}/triotok.db",
            "tracing": "otlp",
            "otlp_endpoint": receiver.url,
        }
        async with trio.open_nursery() as nursery:
            with trio.fail_after(60):
                front, port = await start_node(
                    node_env(**settings, relay="false", demo="true"), nursery
                )
                back, _ = await start_node(node_env(**settings), nursery)
                keys = json.loads((tmp_path / "demo-keys.json").read_text())
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    created = await client.post(
                        "/api/products",
                        json=PRODUCT,
                        headers={
                            "Authorization": f"Bearer {keys['demo']}",
                            "traceparent": f"00-{trace_id}-{client_span}-01",
                        },
                    )
                assert created.status_code == 201, created.text
                db = sqlite3.connect(tmp_path / "triotok.db")
                try:
                    # Node B's relay polls the shared file (SQLite wakes no other
                    # process); a row is marked delivered once its handlers returned.
                    undelivered = "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL"
                    while db.execute(undelivered).fetchone()[0]:  # noqa: ASYNC110  # another process's write: no event to wait on
                        await trio.sleep(0.05)
                finally:
                    db.close()
                for proc in (front, back):
                    proc.send_signal(signal.SIGTERM)  # each flushes its spans on the way out
                assert await front.wait() == 0
                assert await back.wait() == 0
        spans = receiver.trace(trace_id)
    found = assert_product_trace(spans, client_span, tenant="demo")
    front_instance = found["server"].instance
    back_instance = found["deliver"].instance
    assert front_instance != back_instance
    assert found["message"].instance == front_instance
    assert found["handle"].instance == back_instance
