"""Process isolation, for real: a child process per plugin, killed and restarted, alone.

Each test runs a real server (SQLite, hypercorn on 127.0.0.1) with the
process-isolated ``recorder`` plugin (``tests.plugins.sample``), enabled and
switched on for tenant ``acme``, and makes it misbehave through its own
routes: exit, block without yielding, spin the CPU, allocate past its address
space, exceed its CPU time, publish an event type it was not granted, read
another tenant's storage or another plugin's namespace. Each is

* contained: the child dies or the call is refused; the platform answers
  other requests meanwhile (checked while a hang or a spin is in progress);
* reported: in the tree (the host's restarts and last error), the audit log
  (``plugin.crashed``, ``plugin.refused``) and the counters of
  ``GET /system/plugins``;
* recovered: the supervisor restarts the child with backoff (a new pid).

Bounded: every test within ``trio.fail_after``; waits are on the manager's
state, never a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.http.conftest import Server, ServerFactory
from tests.plugins.helpers import collect, enable
from tests.plugins.sample import InlineRecorder, Noted, Recorder, WithActors
from triotok.plugins import Limits, PluginOptions, PluginStatus
from triotok.resilience import Backoff
from triotok.transport import Envelope

pytestmark = pytest.mark.slow

OPTIONS = PluginOptions(
    intensity=20,
    period=60.0,
    backoff=Backoff(min=0.05, max=0.2, jitter=0.0),
    breaker={"window_size": 10, "minimum_calls": 4, "wait_in_open": 60.0},
    limits={"recorder": Limits(deadline=5.0, start_timeout=20.0, memory_mb=128, cpu_seconds=30)},
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The sandbox does not depend on the backend: SQLite only."""
    return f"sqlite:///{tmp_path}/triotok.db"


async def _start(server: Server) -> dict[str, str]:
    await enable(server, "recorder", "acme")
    return server.auth(await server.key("acme", "admin"))


def _restarted(times: int) -> Any:
    def check(status: PluginStatus) -> bool:
        return status.restarts >= times and status.host_state == "running"

    return check


async def _pid(server: Server, key: dict[str, str]) -> int:
    response = await server.client.get("/api/plugins/recorder/pid", headers=key)
    assert response.status_code == 200, response.text
    pid: int = response.json()["pid"]
    return pid


async def _audit(server: Server, action: str) -> list[dict[str, Any]]:
    """The audit log's entries of ``action``, oldest first."""
    rows = await server.app.context.store.store.fetch(
        "SELECT actor, tenant_id, resource, detail FROM audit_log WHERE action = $1 ORDER BY id",
        action,
    )
    return [dict(row) for row in rows]


async def test_a_crash_kills_only_the_child_which_is_restarted(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            manager = server.services.plugins
            before = await _pid(server, key)
            crashed = await server.client.get("/api/plugins/recorder/crash", headers=key)
            assert crashed.status_code == 503
            assert crashed.json()["code"] == "plugin_crashed"
            assert "exited with status 3" in crashed.json()["detail"]
            # The platform answers meanwhile and after.
            live = await server.client.get("/api/tenants/current", headers=key)
            assert live.status_code == 200
            status = await manager.wait_for("recorder", _restarted(1))
            assert status.statistics["exits"] == 1
            assert status.statistics["last_exit"] == "exited with status 3"
            host = server.app.system.tree(prefix="/app/plugins/recorder/host")
            assert host["restarts"] == 1
            assert "exited with status 3" in host["last_error"]["message"]
            assert await _pid(server, key) != before
            [entry] = await _audit(server, "plugin.crashed")
            assert entry["actor"] == "plugin:recorder"
            assert "exited with status 3" in str(entry["detail"])


async def _while_stuck(server: Server, key: dict[str, str], route: str) -> dict[str, Any]:
    """Call ``route`` (which never answers in time); prove the platform answers meanwhile."""
    answers: dict[str, Any] = {}
    order: list[str] = []

    async def stuck() -> None:
        answers["stuck"] = await server.client.get(f"/api/plugins/recorder/{route}", headers=key)
        order.append("plugin")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stuck)
        # Until the host waits for the child's reply to that call.
        host = server.services.plugins.run("recorder").runtime
        while not getattr(host, "_inflight", None):
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)
        for _ in range(3):
            response = await server.client.get("/api/tenants/current", headers=key)
            assert response.status_code == 200
            order.append("platform")
    # The platform answered all three while the plugin's call was stuck (its
    # deadline is 5 s; three local requests take milliseconds).
    assert order == ["platform", "platform", "platform", "plugin"]
    return answers


@pytest.mark.parametrize("route", ["hang", "spin"])
async def test_a_hang_or_a_busy_loop_is_killed_at_the_deadline(
    make_server: ServerFactory, route: str
) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            answers = await _while_stuck(server, key, route)
            stuck = answers["stuck"]
            assert stuck.status_code == 503
            assert stuck.json()["code"] == "plugin_timeout"
            status = await server.services.plugins.wait_for("recorder", _restarted(1))
            assert status.statistics["last_exit"] == "was killed by SIGKILL"
            assert status.statistics["calls"]["timeouts"] == 1
            assert (await _pid(server, key)) > 0  # a new child serves


async def test_a_memory_bomb_hits_its_address_space_limit(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            bomb = await server.client.get("/api/plugins/recorder/bomb", headers=key)
            assert bomb.status_code == 503
            assert "ran out of memory" in bomb.json()["detail"]
            status = await server.services.plugins.wait_for("recorder", _restarted(1))
            assert status.statistics["last_exit"] == "ran out of memory (its address-space limit)"
            assert (await server.client.get("/live")).status_code == 200


async def test_cpu_time_past_the_limit_ends_the_child(make_server: ServerFactory) -> None:
    limits = Limits(deadline=30.0, cpu_seconds=1, start_timeout=20.0)
    options = PluginOptions(backoff=OPTIONS.backoff, intensity=20, limits={"recorder": limits})
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=options) as server:
            key = await _start(server)
            spin = await server.client.get("/api/plugins/recorder/spin", headers=key)
            assert spin.status_code == 503
            assert "CPU-time limit" in spin.json()["detail"]
            status = await server.services.plugins.wait_for("recorder", _restarted(1))
            assert status.statistics["last_exit"] == "exceeded its CPU-time limit (SIGXCPU)"


async def test_refused_capabilities_are_typed_counted_and_audited(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            await server.key("beta", "admin")
            cases = {
                "secret": ("publish", "sample.secret"),
                "peek?tenant=beta": ("storage", "tenant beta"),
                "elsewhere": ("storage", "namespace webhooks"),
            }
            for route, (capability, target) in cases.items():
                response = await server.client.get(f"/api/plugins/recorder/{route}", headers=key)
                assert response.status_code == 403, response.text
                problem = response.json()
                assert problem["code"] == "capability_denied"
                assert (problem["capability"], problem["target"]) == (capability, target)
            status = server.services.plugins.status("recorder")
            assert status.statistics["refused"] == {"publish": 1, "storage": 2}
            assert status.restarts == 0  # refused, not crashed
            audited = await _audit(server, "plugin.refused")
            assert [(e["actor"], e["tenant_id"]) for e in audited] == [
                ("plugin:recorder", "acme")
            ] * 3
            # Nothing was published for the refused event.
            leaked = await server.app.context.store.store.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = $1", "sample.secret"
            )
            assert leaked == 0
            ops = server.auth(await server.operator())
            listed = (await server.client.get("/system/plugins", headers=ops)).json()
            [view] = [p for p in listed["items"] if p["name"] == "recorder"]
            assert view["statistics"]["refused"] == {"publish": 1, "storage": 2}


async def test_events_reach_the_child_only_for_tenants_that_switched_it_on(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            beta = server.auth(await server.key("beta", "admin"))
            seen = await collect(server, "sample.noted")
            async with server.app.context.store.store.transaction() as tx:
                await tx.publish(Envelope.new(Noted("for acme"), tenant_id="acme"))
                await tx.publish(Envelope.new(Noted("for beta"), tenant_id="beta"))
            await seen.wait(2)
            manager = server.services.plugins
            await manager.wait_for(
                "recorder",
                lambda s: (
                    s.statistics["calls"].get("ok", 0) >= 1
                    and s.statistics["calls"].get("skipped", 0) >= 1
                ),
            )
            mine = await server.client.get("/api/plugins/recorder/seen", headers=key)
            assert [i["text"] for i in mine.json()["items"]] == ["for acme"]
            off = await server.client.get("/api/plugins/recorder/seen", headers=beta)
            assert off.status_code == 409
            assert off.json()["code"] == "plugin_off"
            # Its own publish, granted, goes through the outbox like any event.
            noted = await server.client.post(
                "/api/plugins/recorder/note", json={"text": "from the child"}, headers=key
            )
            assert noted.status_code == 201
            envelopes = await seen.wait(3)
            assert envelopes[-1].payload == Noted("from the child")
            assert envelopes[-1].tenant_id == "acme"


async def test_a_failing_plugin_is_shed_by_its_breaker(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(Recorder,), plugin_options=OPTIONS) as server:
            key = await _start(server)
            codes = []
            for _ in range(6):
                response = await server.client.get("/api/plugins/recorder/fail", headers=key)
                assert response.status_code == 503
                codes.append(response.json()["code"])
            # The window of 4 calls (its start among them) opened it: then every call is shed.
            failed = codes.count("plugin_crashed")
            assert failed >= 2
            assert codes == ["plugin_crashed"] * failed + ["circuit_open"] * (6 - failed)
            status = server.services.plugins.status("recorder")
            assert status.breaker == "open"
            assert status.statistics["calls"]["shed"] == 6 - failed
            assert status.restarts == 0  # the child raised; it did not die
            # Other routes of the platform are untouched.
            assert (await server.client.get("/api/tenants/current", headers=key)).status_code == 200


async def test_an_inline_plugin_runs_in_process_under_the_same_gate(
    make_server: ServerFactory,
) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(InlineRecorder,), plugin_options=OPTIONS) as server:
            await enable(server, "inline-recorder", "acme")
            key = server.auth(await server.key("acme", "admin"))
            pid = await server.client.get("/api/plugins/inline-recorder/pid", headers=key)
            import os

            assert pid.json()["pid"] == os.getpid()
            secret = await server.client.get("/api/plugins/inline-recorder/secret", headers=key)
            assert secret.status_code == 403
            assert secret.json()["code"] == "capability_denied"
            elsewhere = await server.client.get(
                "/api/plugins/inline-recorder/elsewhere", headers=key
            )
            assert elsewhere.status_code == 403


async def test_a_process_plugins_actors_run_in_its_child(make_server: ServerFactory) -> None:
    import os

    with trio.fail_after(60):
        async with make_server(plugins=(WithActors,), plugin_options=OPTIONS) as server:
            await enable(server, "with-actors", "acme")
            key = server.auth(await server.key("acme", "editor"))
            answers = []
            for _ in range(2):
                response = await server.client.post("/api/plugins/with-actors/tally", headers=key)
                assert response.status_code == 200, response.text
                answers.append(response.json())
            assert [a["count"] for a in answers] == [1, 2]
            assert answers[0]["path"] == "/plugin/actors/tally"
            assert answers[0]["pid"] != os.getpid()
