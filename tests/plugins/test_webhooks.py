"""The webhooks plugin end to end: a real server, a tiny local receiver on 127.0.0.1.

Signed deliveries a receiver can verify, retries with backoff until a 2xx,
a dead letter after the last attempt and its replay, a breaker per
endpoint, the operator's host grant enforced, and tenants kept apart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from tests.plugins.helpers import enable, receiver
from triotok.plugins import PluginOptions
from triotok.plugins.webhooks import SIGNATURE_HEADER, sign, verify
from triotok.resilience import Backoff

FAST = PluginOptions(
    backoff=Backoff(min=0.05, max=0.2, jitter=0.0),
    settings={
        "webhooks": {
            "attempts": 3,
            "backoff_min": 0.01,
            "backoff_max": 0.05,
            "backoff_jitter": 0.0,
            "breaker_open": 0.05,  # a replay soon finds the breaker half-open
        }
    },
)
NODE = {"kind": "page", "translations": {"en": {"title": "Hello", "slug": "hello"}}}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


def test_a_signature_verifies_only_with_its_secret_body_and_time() -> None:
    body = b'{"a":1}'
    header = sign("whsec_x", body, 1_700_000_000)
    assert verify("whsec_x", header, body, now=1_700_000_100)
    assert not verify("whsec_y", header, body, now=1_700_000_100)
    assert not verify("whsec_x", header, b'{"a":2}', now=1_700_000_100)
    assert not verify("whsec_x", header, body, now=1_700_000_000 + 301)  # replayed late
    assert not verify("whsec_x", "v1=abc", body, now=1_700_000_000)
    assert not verify("whsec_x", "t=zz,v1=abc", body, now=1_700_000_000)


async def _endpoint(server: Server, key: dict[str, str], url: str, events: list[str]) -> Any:
    response = await server.client.post(
        "/api/plugins/webhooks/endpoints", json={"url": url, "events": events}, headers=key
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_deliveries_are_signed_and_retried_until_accepted(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with (
            make_server(plugin_options=FAST) as server,
            receiver([500, 503, 200]) as hooks,
        ):
            await enable(server, "webhooks", "acme", grants={"subscribe": ["*"], "routes": True,
                         "hosts": ["127.0.0.1"], "storage": "webhooks"})  # fmt: skip
            key = server.auth(await server.key("acme", "admin"))
            endpoint = await _endpoint(server, key, hooks.url, ["content.node.created"])
            assert endpoint["secret"].startswith("whsec_")
            listed = await server.client.get("/api/plugins/webhooks/endpoints", headers=key)
            assert listed.json()["items"][0]["secret"] is None  # shown once only
            created = await server.client.post("/api/content/nodes", json=NODE, headers=key)
            assert created.status_code == 201
            requests = await hooks.wait(3)
            assert [h["x-triotok-attempt"] for h, _ in requests] == ["1", "2", "3"]
            for headers, body in requests:
                assert verify(
                    endpoint["secret"], headers[SIGNATURE_HEADER.lower()], body, now=time.time()
                )
                assert headers["x-triotok-event"] == "content.node.created"
            payload = json.loads(requests[-1][1])
            assert payload["type"] == "content.node.created"
            assert payload["tenant"] == "acme"
            assert payload["data"]["node"]["node_id"] == created.json()["id"]
            await _plugin(server).wait_outcomes(1)
            assert await _letters(server, key) == []


async def test_a_delivery_failing_every_attempt_is_dead_lettered_and_replayed(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with (
            make_server(plugin_options=FAST) as server,
            receiver([500, 500, 500, 200]) as hooks,
        ):
            await enable(server, "webhooks", "acme")
            key = server.auth(await server.key("acme", "admin"))
            endpoint = await _endpoint(server, key, hooks.url, ["content.*"])
            await server.client.post("/api/content/nodes", json=NODE, headers=key)
            await hooks.wait(3)
            await _plugin(server).wait_outcomes(1)
            letters = await _letters(server, key)
            [letter] = letters
            assert letter["endpoint_id"] == endpoint["id"]
            assert letter["attempts"] == 3
            assert letter["last_error"] == "HTTP 500"
            assert "body" not in letter
            replay = await server.client.post(
                f"/api/plugins/webhooks/dead-letters/{letter['id']}/replay", headers=key
            )
            assert replay.status_code == 200
            assert replay.json() == {"id": letter["id"], "queued": True}
            requests = await hooks.wait(4)
            assert requests[3][1] == requests[0][1]  # the same event, signed again
            await _plugin(server).wait_outcomes(2)
            assert await _letters(server, key) == []
            missing = await server.client.post(
                "/api/plugins/webhooks/dead-letters/nope/replay", headers=key
            )
            assert missing.status_code == 404


def _plugin(server: Server) -> Any:
    """The running webhooks plugin instance (its ``wait_outcomes`` ends a test's wait)."""
    return server.services.plugins.run("webhooks").instance


async def _letters(server: Server, key: dict[str, str]) -> list[Any]:
    response = await server.client.get("/api/plugins/webhooks/dead-letters", headers=key)
    assert response.status_code == 200
    return list(response.json()["items"])


async def test_a_host_outside_the_grant_is_refused_and_dead_lettered(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with make_server(plugin_options=FAST) as server, receiver() as hooks:
            await enable(server, "webhooks", "acme", grants={"subscribe": ["*"], "routes": True,
                         "hosts": ["hooks.example.com"], "storage": "webhooks"})  # fmt: skip
            key = server.auth(await server.key("acme", "admin"))
            await _endpoint(server, key, hooks.url, ["content.*"])
            await server.client.post("/api/content/nodes", json=NODE, headers=key)
            await _plugin(server).wait_outcomes(1)
            [letter] = await _letters(server, key)
            assert letter["attempts"] == 1  # refused: retrying cannot help
            assert "outside its grant" in letter["last_error"]
            assert hooks.requests == []
            refused = server.services.plugins.status("webhooks").statistics["refused"]
            assert refused == {"http": 1}


async def test_tenants_see_only_their_endpoints_and_events(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with make_server(plugin_options=FAST) as server, receiver() as hooks:
            await enable(server, "webhooks", "acme", "beta")
            acme = server.auth(await server.key("acme", "admin"))
            beta = server.auth(await server.key("beta", "admin"))
            mine = await _endpoint(server, acme, hooks.url, ["content.*"])
            theirs = (
                await server.client.get("/api/plugins/webhooks/endpoints", headers=beta)
            ).json()
            assert theirs["items"] == []
            gone = await server.client.delete(
                f"/api/plugins/webhooks/endpoints/{mine['id']}", headers=beta
            )
            assert gone.status_code == 404  # not beta's
            await server.client.post("/api/content/nodes", json=NODE, headers=beta)
            await server.client.post("/api/content/nodes", json=NODE, headers=acme)
            [(_, body)] = await hooks.wait(1)
            assert json.loads(body)["tenant"] == "acme"
            deleted = await server.client.delete(
                f"/api/plugins/webhooks/endpoints/{mine['id']}", headers=acme
            )
            assert deleted.status_code == 204


async def test_a_dead_receiver_opens_its_endpoints_breaker(make_server: ServerFactory) -> None:
    # One delivery at a time, and the breaker stays open once it opened.
    settings = {"webhooks": {**FAST.settings["webhooks"], "concurrency": 1, "breaker_open": 60.0}}
    options = PluginOptions(backoff=FAST.backoff, settings=settings)
    with trio.fail_after(60):
        async with make_server(plugin_options=options) as server, receiver([500]) as hooks:
            await enable(server, "webhooks", "acme")
            key = server.auth(await server.key("acme", "admin"))
            endpoint = await _endpoint(server, key, hooks.url, ["content.*"])
            for slug in ("a", "b"):
                body = {"kind": "page", "translations": {"en": {"title": "T", "slug": slug}}}
                await server.client.post("/api/content/nodes", json=body, headers=key)
            await _plugin(server).wait_outcomes(2)
            letters = await _letters(server, key)
            assert len(letters) == 2
            tree = server.app.system.tree(prefix="/app/plugins/webhooks/deliverer")
            breaker = tree["components"][f"endpoint-{endpoint['id']}"]
            assert breaker["state"] == "open"
            # Three calls reached the receiver; the rest were shed by the breaker.
            assert len(hooks.requests) == 3
            assert {letter["last_error"] for letter in letters} >= {
                "the endpoint's circuit is open"
            }


async def test_an_unreachable_receiver_is_retried_then_dead_lettered(
    make_server: ServerFactory,
) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    with trio.fail_after(60):
        async with make_server(plugin_options=FAST) as server:
            await enable(server, "webhooks", "acme")
            key = server.auth(await server.key("acme", "admin"))
            await _endpoint(server, key, closed, ["content.*"])
            await server.client.post("/api/content/nodes", json=NODE, headers=key)
            await _plugin(server).wait_outcomes(1)
            [letter] = await _letters(server, key)
            assert letter["attempts"] == 3
            assert "OSError" in letter["last_error"] or "Connect" in letter["last_error"]
