"""Regressions of issue 9: input that broke a tenant for good, answered 500 or non-JSON,
a rate-limit bypass behind a proxy, health blind to failing writes, a Host redirect."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from tests.http.test_bad_input import assert_problem
from triotok.http._middleware import client_ip
from triotok.modules.tenants import TenantRepository

#: For tests that write into the SQLite file themselves (overrides conftest's backends).
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

STRICT = {"parse_constant": lambda name: pytest.fail(f"{name} is not JSON")}


def strict_json(response: httpx.Response) -> Any:
    """The body, parsed as strict JSON (NaN/Infinity fail the test)."""
    return json.loads(response.content, **STRICT)


def nested(depth: int) -> str:
    """The JSON text of an object ``depth`` levels deep (``{}`` is 1)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def raw_body(settings: str, **fields: Any) -> str:
    """A JSON object of ``fields`` plus ``settings`` given as JSON text."""
    head = json.dumps(fields)[:-1]
    return f'{head}{", " if fields else ""}"settings": {settings}}}'


# ------------------------------------------------------------------ 2. depth


async def test_deep_settings_are_refused_before_anything_is_stored(server: Server) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": "application/json"}
    with trio.fail_after(20):
        # The body is level 1, settings level 2: 31 more levels make 33.
        deep = raw_body(id="deep", name="Deep", settings=nested(32))
        response = await server.client.post("/api/tenants", content=deep, headers=headers)
        assert_problem(response, 400, "invalid_json")
        assert "32" in response.json()["detail"]
        very_deep = raw_body(id="deep", name="Deep", settings=nested(980))
        response = await server.client.post("/api/tenants", content=very_deep, headers=headers)
        assert_problem(response, 400, "invalid_json")
        assert await server.services.context.get(TenantRepository).get("deep") is None
        ok = raw_body(id="deep", name="Deep", settings=nested(31))
        assert (await server.client.post("/api/tenants", content=ok, headers=headers)).is_success
        response = await server.client.patch(
            "/api/tenants/deep", content=raw_body(settings=nested(40)), headers=headers
        )
        assert_problem(response, 400, "invalid_json")
        assert (await server.services.context.get(TenantRepository).get("deep")).version == 1


LEGACY_BLOBS = [
    pytest.param(nested(980), id="deep"),
    pytest.param('{"x": Infinity, "y": NaN}', id="non-finite"),
    pytest.param('{"x": 1e400}', id="overflow"),
    pytest.param('{"x": "\\ud800"}', id="surrogate"),
    pytest.param("[1, 2]", id="not-an-object"),
    pytest.param("{not json", id="garbage"),
]


@pytest.mark.parametrize("blob", LEGACY_BLOBS)
@SQLITE_ONLY
async def test_a_tenant_stored_by_an_earlier_version_stays_manageable(
    tmp_path: Path, make_server: ServerFactory, blob: str
) -> None:
    async with make_server(store_url=f"sqlite:///{tmp_path}/legacy.db") as server:
        operator = server.auth(await server.operator())
        await server.tenant("legacy")
        key = await server.key("legacy", "admin")
        # What an earlier version could have committed, written straight into the file.
        with sqlite3.connect(tmp_path / "legacy.db") as conn:
            conn.execute("UPDATE tenants SET settings = ? WHERE id = 'legacy'", (blob,))
        conn.close()
        server.services.tenants.invalidate("legacy")
        with trio.fail_after(20):
            listed = await server.client.get("/api/tenants", headers=operator)
            assert listed.status_code == 200, listed.text
            ids = [t["id"] for t in strict_json(listed)["items"]]
            assert "legacy" in ids
            one = await server.client.get("/api/tenants/legacy", headers=operator)
            assert one.status_code == 200, one.text
            assert strict_json(one)["settings"] == {}
            own = await server.client.get("/api/tenants/current", headers=server.auth(key))
            assert own.status_code == 200, own.text
            strict_json(own)
            renamed = await server.client.patch(
                "/api/tenants/legacy", json={"name": "Renamed"}, headers=operator
            )
            assert renamed.status_code == 200, renamed.text
            assert strict_json(renamed)["name"] == "Renamed"
            fixed = await server.client.patch(
                "/api/tenants/legacy", json={"settings": {"ok": 1}}, headers=operator
            )
            assert fixed.status_code == 200, fixed.text
            assert strict_json(fixed)["settings"] == {"ok": 1}
            gone = await server.client.post("/api/tenants/legacy/deactivate", headers=operator)
            assert gone.status_code == 200, gone.text
            assert strict_json(gone)["active"] is False


@SQLITE_ONLY
async def test_a_rename_keeps_unreadable_stored_settings_untouched(
    tmp_path: Path, make_server: ServerFactory
) -> None:
    """Settings the server cannot serve are shown as {} but never overwritten by a rename."""
    blob = '{"x": Infinity}'
    async with make_server(store_url=f"sqlite:///{tmp_path}/legacy.db") as server:
        operator = server.auth(await server.operator())
        await server.tenant("legacy")
        with sqlite3.connect(tmp_path / "legacy.db") as conn:
            conn.execute("UPDATE tenants SET settings = ? WHERE id = 'legacy'", (blob,))
        conn.close()
        with trio.fail_after(10):
            response = await server.client.patch(
                "/api/tenants/legacy", json={"name": "Renamed"}, headers=operator
            )
        assert response.status_code == 200
        stored = await server.services.store.store.fetchval(
            "SELECT settings FROM tenants WHERE id = 'legacy'"
        )
        assert stored == blob


# ------------------------------------------------------------------ 3. non-finite numbers


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999", "NaN", "-Infinity"])
async def test_numbers_that_are_not_finite_are_refused(server: Server, number: str) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": "application/json"}
    body = '{"id": "inf", "name": "Inf", "settings": {"x": ' + number + "}}"
    with trio.fail_after(10):
        response = await server.client.post("/api/tenants", content=body, headers=headers)
        assert_problem(response, 400, "invalid_json")
        update = await server.client.patch(
            "/api/tenants/ops",
            content='{"settings": {"x": ' + number + "}}",
            headers=headers,
        )
    assert_problem(update, 400, "invalid_json")
    assert await server.services.context.get(TenantRepository).get("inf") is None


async def test_huge_integers_are_refused_or_stored_exactly(server: Server) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": "application/json"}
    with trio.fail_after(10):
        version = await server.client.patch(
            "/api/tenants/ops",
            content='{"version": 1' + "0" * 30 + "}",
            headers=headers,
        )
        assert_problem(version, 422, "validation_failed")
        big = '{"settings": {"x": 1' + "0" * 300 + "}}"
        stored = await server.client.patch("/api/tenants/ops", content=big, headers=headers)
    assert stored.status_code == 200
    assert strict_json(stored)["settings"]["x"] == 10**300


# ------------------------------------------------------------------ 4. text that is not UTF-8


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"id": "s", "name": "\\ud800"}', "/name"),
        ('{"id": "s", "name": "x\\udfff"}', "/name"),
        ('{"id": "s", "name": "S", "settings": {"\\ud800": 1}}', "/settings/\ud800"),
        ('{"id": "s", "name": "S", "settings": {"k": ["ok", "\\udc00"]}}', "/settings/k/1"),
        ('{"id": "\\ud83d", "name": "S"}', "/id"),
        ('{"id": "s", "name": "S", "settings": {"k": "a\\u0000"}}', "/settings/k"),
    ],
)
async def test_lone_surrogates_in_a_body_are_a_422_naming_the_field(
    server: Server, body: str, path: str
) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": "application/json"}
    with trio.fail_after(10):
        response = await server.client.post("/api/tenants", content=body, headers=headers)
    problem = assert_problem(response, 422, "validation_failed")
    # A surrogate in a key is shown as U+FFFD: the problem itself is strict JSON.
    assert [e["path"] for e in problem["errors"]] == [path.replace("\ud800", "\ufffd")]


async def test_a_surrogate_pair_is_one_valid_character(server: Server) -> None:
    headers = {**server.auth(await server.operator()), "Content-Type": "application/json"}
    body = '{"id": "pair", "name": "\\ud83d\\ude00"}'
    with trio.fail_after(10):
        response = await server.client.post("/api/tenants", content=body, headers=headers)
    assert response.status_code == 201, response.text
    assert strict_json(response)["name"] == "\U0001f600"


async def test_text_that_is_not_utf8_in_a_header_is_a_422(server: Server) -> None:
    key = await server.key("alpha", "admin")
    with trio.fail_after(10):
        header = await server.client.get(
            "/api/tenants/current", headers={**server.auth(key), "X-Tenant": b"\xff\xfe"}
        )
    problem = assert_problem(header, 422, "validation_failed")
    assert problem["errors"][0] == {
        "in": "header",
        "path": "X-Tenant",
        "message": "is not valid UTF-8 text",
    }


# ------------------------------------------------------------------ 5. proxies


def test_the_client_is_the_hop_the_trusted_proxy_added() -> None:
    forwarded = "6.6.6.6, 1.2.3.4"  # the client wrote 6.6.6.6; our proxy appended 1.2.3.4
    assert client_ip("10.0.0.1", forwarded, trust_proxy=True) == "1.2.3.4"
    assert client_ip("10.0.0.1", forwarded, trust_proxy=True, hops=2) == "6.6.6.6"
    assert client_ip("10.0.0.1", "1.2.3.4", trust_proxy=True, hops=2) == "10.0.0.1"
    assert client_ip("10.0.0.1", forwarded, trust_proxy=False) == "10.0.0.1"
    assert client_ip("10.0.0.1", " , ", trust_proxy=True) == "10.0.0.1"
    assert client_ip(None, None, trust_proxy=True) == "unknown"


async def test_a_client_cannot_choose_its_rate_limit_key_behind_a_proxy(
    make_server: ServerFactory,
) -> None:
    async with make_server(trust_proxy=True, rate_limit_per_ip=5) as server:
        statuses = []
        with trio.fail_after(20):
            for n in range(8):
                # An appending proxy: whatever the client sent, then the client's address.
                forwarded = {"X-Forwarded-For": f"10.9.{n}.1, 203.0.113.7"}
                statuses.append((await server.client.get("/live", headers=forwarded)).status_code)
            other = await server.client.get(
                "/live", headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1"}
            )
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    assert other.status_code == 200


async def test_two_trusted_proxies(make_server: ServerFactory) -> None:
    async with make_server(trust_proxy=True, trusted_proxy_hops=2, rate_limit_per_ip=2) as server:
        with trio.fail_after(20):
            statuses = [
                (
                    await server.client.get(
                        "/live", headers={"X-Forwarded-For": f"spoof{n}, 203.0.113.7, 10.0.0.2"}
                    )
                ).status_code
                for n in range(3)
            ]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("trust_proxy", [False, True])
async def test_forwarded_proto_turns_on_hsts_only_behind_a_trusted_proxy(
    make_server: ServerFactory, trust_proxy: bool
) -> None:
    async with make_server(trust_proxy=trust_proxy) as server:
        with trio.fail_after(10):
            response = await server.client.get("/live", headers={"X-Forwarded-Proto": "https"})
    assert ("strict-transport-security" in response.headers) is trust_proxy


# ------------------------------------------------------------------ 6. failing writes


@SQLITE_ONLY
async def test_health_reports_the_store_degraded_while_writes_fail(
    tmp_path: Path, make_server: ServerFactory
) -> None:
    db = tmp_path / "locked.db"
    async with make_server(store_url=f"sqlite:///{db}?busy_timeout=0.05") as server:
        operator = server.auth(await server.operator())
        with trio.fail_after(30):
            assert (await server.client.get("/ready")).status_code == 200
            # Another process holds the write lock: every write of ours fails.
            # In a worker thread: waiting for the lock must not block the loop that
            # runs the server's own transactions.
            blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            try:
                await trio.to_thread.run_sync(blocker.execute, "BEGIN EXCLUSIVE")
                for n in range(5):
                    write = await server.client.post(
                        "/api/tenants", json={"id": f"t{n}", "name": "T"}, headers=operator
                    )
                    # The store's refusal, or the gate's once the node is read-only.
                    assert write.status_code == 503
                    assert write.json()["code"] in ("store_unavailable", "read_only")
                    assert "Retry-After" in write.headers
                ready = await server.client.get("/ready")
                assert_problem(ready, 503, "not_ready")
                assert ready.json()["checks"]["store"]["status"] == "degraded"
                health = await server.client.get("/health")
                assert health.status_code == 503
                assert health.json()["status"] == "degraded"
                store = health.json()["subsystems"]["store"]
                assert store["status"] == "degraded"
                # The write breaker opens after a few: the rest fail fast, untried.
                assert store["consecutive_write_failures"] >= 3
                await server.wait_mode("read_only")
            finally:
                if blocker.in_transaction:
                    blocker.execute("ROLLBACK")
                blocker.close()
            # The monitor's heartbeat is the write breaker's trial call.
            await server.wait_mode("full")
            write = await server.client.post(
                "/api/tenants", json={"id": "back", "name": "Back"}, headers=operator
            )
            assert write.status_code == 201, write.text
            assert (await server.client.get("/ready")).status_code == 200
            assert (await server.client.get("/health")).json()["status"] == "ok"


def test_a_read_only_database_is_unavailable_not_a_bug(tmp_path: Path) -> None:
    from triotok.store import StoreUnavailable
    from triotok.store._sqlite import _map_error

    db = tmp_path / "ro.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    assert isinstance(_map_error(caught.value, db), StoreUnavailable)


# ------------------------------------------------------------------ 7. Host redirects


@pytest.mark.parametrize(
    "path", ["/api//tenants/current", "//live", "/api/tenants//ops", "/live/", "/api/tenants/"]
)
async def test_no_redirect_is_built_from_the_client_host(server: Server, path: str) -> None:
    key = await server.operator()
    with trio.fail_after(10):
        response = await server.client.get(
            path, headers={**server.auth(key), "Host": "evil.example"}
        )
    assert "location" not in response.headers
    assert "evil.example" not in response.text
    assert_problem(response, 404, "route_not_found")


async def test_no_route_may_end_with_a_slash(server: Server) -> None:
    from triotok.http import Route, create_app

    async def handler(call: object) -> dict[str, str]:
        return {}

    with pytest.raises(ValueError, match="never end with"):
        create_app(server.services, [Route("GET", "/things/", handler, "x", "t", None)])


# ------------------------------------------------------------------ 9. query strings


@pytest.mark.parametrize(
    "limit", ["+5", "%205", "5%20", "1_0", "%D9%A5", "0x10", "5.0", "1e2", "", "--5"]
)
async def test_query_integers_are_ascii_digits_only(server: Server, limit: str) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get(f"/api/tenants?limit={limit}", headers=headers)
    assert_problem(response, 400, "invalid_query")


async def test_query_integers_that_are_well_formed(server: Server) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get("/api/tenants?limit=05", headers=headers)
        negative = await server.client.get("/api/tenants?limit=-5", headers=headers)
        huge = await server.client.get(f"/api/tenants?limit={'9' * 5000}", headers=headers)
    assert response.status_code == 200
    assert_problem(negative, 400, "invalid_query")
    assert_problem(huge, 400, "invalid_query")


async def test_text_that_is_not_utf8_in_a_query_is_a_422(server: Server) -> None:
    operator = server.auth(await server.operator())
    with trio.fail_after(10):
        query = await server.client.get("/api/tenants?after=%ED%A0%80", headers=operator)
    problem = assert_problem(query, 422, "validation_failed")
    assert problem["errors"][0]["path"] == "after"
    assert problem["errors"][0]["in"] == "query"


@pytest.mark.parametrize(
    "query", ["limit=5&limit=6", "limit=5&limit=5", "after=a&after=b", "after=a&limit=2&after="]
)
async def test_a_repeated_parameter_is_a_400(server: Server, query: str) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.get(f"/api/tenants?{query}", headers=headers)
    problem = assert_problem(response, 400, "invalid_query")
    assert "more than once" in problem["detail"]


# ------------------------------------------------------------------ 10. format characters


@pytest.mark.parametrize(
    "name", ["evil\u202etxt.exe", "a\u200bb", "\ufeffBOM", "x\u2066y", "tag\U000e0041", "a\x00b"]
)
async def test_names_refuse_invisible_format_characters(server: Server, name: str) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        created = await server.client.post(
            "/api/tenants", json={"id": "fmt", "name": name}, headers=headers
        )
        problem = assert_problem(created, 422, "validation_failed")
        assert [e["path"] for e in problem["errors"]] == ["/name"]
        renamed = await server.client.patch(
            "/api/tenants/ops", json={"name": name}, headers=headers
        )
    problem = assert_problem(renamed, 422, "validation_failed")
    assert [e["path"] for e in problem["errors"]] == ["/name"]


async def test_names_keep_visible_unicode(server: Server) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        created = await server.client.post(
            "/api/tenants",
            json={"id": "uni", "name": "Café 東京 \U0001f600 עברית"},
            headers=headers,
        )
    assert created.status_code == 201, created.text
