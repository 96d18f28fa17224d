"""``/metrics``: Prometheus text format, bounded labels, the operator key or its own listener.

Checked with real components: ``promtool check metrics`` lints the live
output, and a real Prometheus scrapes a live server and answers
``http_requests_total`` through its query API.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import urllib.parse
from pathlib import Path

import httpx
import pytest
import trio

from tests.telemetry.conftest import ServerFactory
from tests.telemetry.test_traces import PRODUCT

#: The names issue 15 lists (each family present in a scrape of a server that served a write).
REQUIRED = (
    "http_requests_total",
    "http_request_duration_seconds",
    "db_connections_active",
    "db_connections_idle",
    "db_query_duration_seconds",
    "tenant_cache_hits_total",
    "tenant_cache_misses_total",
    "tenant_resolution_duration_seconds",
    "events_published_total",
    "events_processed_total",
    "events_failed_total",
    "event_processing_duration_seconds",
    "outbox_lag_events",
    "outbox_lag_seconds",
    "dead_letters",
    "module_health",
    "actor_mailbox_depth",
    "actor_messages_processed_total",
    "actor_messages_failed_total",
    "actor_restarts_total",
    "entities_active",
    "breaker_state",
    "index_lag_seconds",
    "triotok_ready",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def scrape(server: object) -> httpx.Response:
    client: httpx.AsyncClient = server.client  # type: ignore[attr-defined]
    key = await server.operator()  # type: ignore[attr-defined]
    return await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def samples(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line == name]


async def _exercise(server: object) -> str:
    """One product written and read back, by the demo's editor; returns the product's id."""
    key = await server.key("acme")  # type: ignore[attr-defined]
    auth = server.auth(key)  # type: ignore[attr-defined]
    client: httpx.AsyncClient = server.client  # type: ignore[attr-defined]
    created = await client.post("/api/products", json=PRODUCT, headers=auth)
    assert created.status_code == 201, created.text
    product_id = str(created.json()["id"])
    read = await client.get(f"/api/products/{product_id}", headers=auth)
    assert read.status_code == 200
    missing = await client.get("/no/such/path")
    assert missing.status_code == 404
    return product_id


async def test_metrics_need_the_operator_key_and_use_route_templates(
    make_server: ServerFactory,
) -> None:
    async with make_server() as server:
        with trio.fail_after(30):
            product_id = await _exercise(server)
            await server.app.system.runtime.lookup("/app/transport/relay").actor.drain()
            assert (await server.client.get("/metrics")).status_code == 401
            editor = await server.key("acme", "editor")
            refused = await server.client.get("/metrics", headers=server.auth(editor))
            assert refused.status_code == 403
            reply = await server.client.get(
                "/metrics", headers=server.auth(await server.operator())
            )
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = reply.text
    assert set(REQUIRED) - {"index_lag_seconds", "breaker_state"} <= families(text) | {
        "events_failed_total"  # no handler failed: the family has no series yet
    }
    assert product_id not in text  # raw paths and entity keys never become labels
    requests = samples(text, "http_requests_total")
    assert any('route="/api/products/<product_id>"' in s and 'status="200"' in s for s in requests)
    assert any('route="/api/products"' in s and 'status="201"' in s for s in requests)
    assert any('route="unmatched"' in s and 'status="404"' in s for s in requests)
    regions = samples(text, "entities_active")
    assert any('region="/app/modules/commerce/products"' in s for s in regions)
    assert not any("/app/modules/commerce/products/" in s for s in text.splitlines())
    assert 'event_type="product.created"' in " ".join(samples(text, "events_published_total"))
    assert 'module_health{module="store",status="up"} 1.0' in text
    assert "triotok_ready 1.0" in text


async def test_metrics_off_answer_404_and_add_no_middleware(make_server: ServerFactory) -> None:
    async with make_server(metrics=False) as server:
        reply = await scrape(server)
        assert reply.status_code == 404
        assert reply.json()["code"] == "metrics_off"
        assert type(server.services.app.asgi_app).__name__ == "Gateway"


async def test_a_metrics_listener_serves_without_a_key(make_server: ServerFactory) -> None:
    port = free_port()
    async with make_server(metrics_port=port) as server:
        with trio.fail_after(30):
            await _exercise(server)
            async with httpx.AsyncClient() as client:
                reply = await client.get(f"http://127.0.0.1:{port}/metrics")
                other = await client.get(f"http://127.0.0.1:{port}/api/products")
        assert reply.status_code == 200
        assert "http_requests_total" in reply.text
        assert other.status_code == 404


async def test_promtool_accepts_the_live_output(
    make_server: ServerFactory, promtool: str, tmp_path: Path
) -> None:
    async with make_server() as server:
        with trio.fail_after(30):
            await _exercise(server)
            reply = await server.client.get(
                "/metrics", headers=server.auth(await server.operator())
            )
    checked = await trio.run_process(
        [promtool, "check", "metrics"],
        stdin=reply.content,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert output == b"", output  # no lint warning either


@pytest.mark.slow
async def test_a_real_prometheus_scrapes_and_answers_http_requests_total(
    make_server: ServerFactory, prometheus: str, tmp_path: Path
) -> None:
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: triotok\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    async with make_server(metrics_port=metrics_port) as server, trio.open_nursery() as nursery:
        await _exercise(server)
        command = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ]
        run = functools.partial(
            trio.run_process,
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        proc = await nursery.start(run)
        query = urllib.parse.quote('sum(http_requests_total{route="/api/products",status="201"})')
        url = f"http://127.0.0.1:{web_port}/api/v1/query?query={query}"
        result: list[object] = []
        try:
            with trio.fail_after(60):
                async with httpx.AsyncClient() as client:
                    while not result:  # until Prometheus has scraped once
                        try:
                            answer = (await client.get(url)).json()
                            result = answer["data"]["result"]
                        except (httpx.HTTPError, json.JSONDecodeError, KeyError):
                            pass
                        if not result:
                            await trio.sleep(0.5)
        finally:
            proc.terminate()
    assert result[0]["value"][1] == "1"  # type: ignore[index]
