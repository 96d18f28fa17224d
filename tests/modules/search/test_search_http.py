"""``/api/search`` and the read-model lists end to end, on a real server (SQLite and PostgreSQL).

Writes go through the products and content APIs; their events reach the
search module through the outbox relay and the bus; reads pass the write's
``X-Consistency-Token`` as ``min_token`` and see it at once.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from triotok.modules.search import SearchService

PRODUCTS = "/api/products"
NODES = "/api/content/nodes"
SEARCH = "/api/search"
TOKEN = "X-Consistency-Token"
STALE = "X-Consistency-Stale"


def _product(sku: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "title": title, "price": 1290, "currency": "EUR", **extra}


async def _create(server: Server, key: str, body: Any) -> httpx.Response:
    response = await server.client.post(PRODUCTS, json=body, headers=server.auth(key))
    assert response.status_code == 201, response.text
    return response


async def test_a_product_created_over_http_is_found_by_the_very_next_request(
    server: Server,
) -> None:
    key = await server.key("alpha", "editor")
    with trio.fail_after(30):
        created = await _create(server, key, _product("MUG-1", "Blue crème mug"))
        token = created.headers[TOKEN]
        assert int(token) >= 1
        found = await server.client.get(
            SEARCH, params={"q": "creme mu*", "min_token": token}, headers=server.auth(key)
        )
    assert found.status_code == 200, found.text
    assert STALE not in found.headers
    body = found.json()
    assert [i["id"] for i in body["items"]] == [created.json()["id"]]
    assert body["total"] == 1
    hit = body["items"][0]
    assert hit["type"] == "product"
    assert hit["highlights"]["title"] == "Blue <mark>crème</mark> <mark>mug</mark>"


async def test_every_write_answers_a_token_that_never_goes_back(server: Server) -> None:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    with trio.fail_after(30):
        created = await _create(server, key, _product("MUG-1", "Mug"))
        url = f"{PRODUCTS}/{created.json()['id']}"
        patched = await server.client.patch(
            url, json={"status": "active"}, headers={**auth, "If-Match": '"1"'}
        )
        stocked = await server.client.post(
            f"{url}/inventory", json={"delta": 3, "reason": "in"}, headers=auth
        )
        node = await server.client.post(
            NODES,
            json={"kind": "page", "translations": {"en": {"title": "Hi", "slug": "hi"}}},
            headers=auth,
        )
        read = await server.client.get(url, headers=auth)
        refused = await server.client.patch(
            url, json={"title": "x"}, headers={**auth, "If-Match": '"1"'}
        )
    tokens = [int(r.headers[TOKEN]) for r in (created, patched, stocked, node)]
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 4
    assert TOKEN not in read.headers  # reads write nothing
    assert refused.status_code == 412
    assert TOKEN not in refused.headers


async def test_the_lists_and_search_wait_for_a_token(server: Server) -> None:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    with trio.fail_after(30):
        created = await _create(server, key, _product("MUG-1", "Mug"))
        url = f"{PRODUCTS}/{created.json()['id']}"
        stocked = await server.client.post(
            f"{url}/inventory", json={"delta": 7, "reason": "in"}, headers=auth
        )
        token = stocked.headers[TOKEN]
        listed = await server.client.get(PRODUCTS, params={"min_token": token}, headers=auth)
        searched = await server.client.get(
            SEARCH, params={"q": "mug", "min_token": token}, headers=auth
        )
    assert STALE not in listed.headers
    assert STALE not in searched.headers
    [item] = listed.json()["items"]
    assert (item["on_hand"], item["available"], item["version"]) == (7, 7, 2)
    assert searched.json()["items"][0]["on_hand"] == 7


@pytest.fixture
async def slow_index(make_server: ServerFactory) -> Any:
    async with make_server(search_consistency_wait=0.2) as server:
        yield server


async def test_a_token_not_applied_in_time_answers_200_marked_stale(slow_index: Server) -> None:
    server = slow_index
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    system = server.app.system
    with trio.fail_after(30):
        # Without the relay nothing reaches the index.
        await system.ref("/app/transport/relay").stop()
        created = await _create(server, key, _product("MUG-1", "Mug"))
        token = created.headers[TOKEN]
        stale = await server.client.get(PRODUCTS, params={"min_token": token}, headers=auth)
        assert stale.status_code == 200
        assert stale.headers[STALE] == "true"
        assert stale.json()["items"] == []
        found = await server.client.get(
            SEARCH, params={"q": "mug", "min_token": token}, headers=auth
        )
        assert (found.headers[STALE], found.json()["total"]) == ("true", 0)
        # A token of the past is applied: no wait, not stale.
        old = await server.client.get(PRODUCTS, params={"min_token": 1}, headers=auth)
        assert STALE not in old.headers


async def test_search_parameters_filters_facets_and_cursor(server: Server) -> None:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    with trio.fail_after(60):
        token = "1"
        for sku, title, price, attributes in (
            ("MUG-BLUE", "Blue mug", 1290, {"color": "blue", "ml": 350}),
            ("MUG-RED", "Red mug", 990, {"color": "red", "ml": 350}),
            ("POT-BLUE", "Blue teapot", 5400, {"color": "blue"}),
        ):
            response = await _create(
                server, key, _product(sku, title, price=price, attributes=attributes)
            )
            token = response.headers[TOKEN]

        async def get(**params: Any) -> httpx.Response:
            return await server.client.get(
                SEARCH, params={"min_token": token, **params}, headers=auth
            )

        everything = (await get()).json()
        assert everything["total"] == 3
        assert everything["facets"]["status"] == {"draft": 3}
        assert everything["facets"]["attributes"] == {
            "color": {"blue": 2, "red": 1},
            "ml": {"350": 2},
        }
        assert [b["count"] for b in everything["facets"]["price"]] == [1, 1, 1]
        blue = (await get(**{"attr.color": "blue", "q": "mug"})).json()
        assert [i["sku"] for i in blue["items"]] == ["MUG-BLUE"]
        either = await server.client.get(
            SEARCH,
            params=[
                ("attr.color", "red"),
                ("attr.color", "blue"),
                ("attr.ml", "350"),
                ("sort", "-price"),
                ("min_token", token),
            ],
            headers=auth,
        )
        assert [i["sku"] for i in either.json()["items"]] == ["MUG-BLUE", "MUG-RED"]
        cheap = (await get(price_max=1000)).json()
        assert [i["sku"] for i in cheap["items"]] == ["MUG-RED"]
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"sort": "price", "limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = (await get(**params)).json()
            seen += [i["price"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [990, 1290, 5400]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": '"blue'}, "invalid_search_query"),
        ({"q": "-mug"}, "invalid_search_query"),
        ({"q": "m*"}, "invalid_search_query"),
        ({"type": "content", "sort": "price"}, "invalid_input"),
        ({"sort": "published_at"}, "invalid_input"),
        ({"type": "content", "price_min": "5"}, "invalid_input"),
        ({"kind": "page"}, "invalid_input"),
        ({"status": "published"}, "invalid_input"),
        ({"price_min": "9", "price_max": "1"}, "invalid_input"),
        ({"cursor": "bm9wZQ"}, "invalid_input"),
        ({"attr.Color": "x"}, "invalid_query"),
        ({"type": "content", "attr.color": "x"}, "invalid_input"),
        ({"type": "nope"}, "invalid_query"),
        ({"limit": "0"}, "invalid_query"),
        ({"min_token": "0"}, "invalid_query"),
    ],
)
async def test_bad_searches_are_400_problems(
    server: Server, params: dict[str, str], code: str
) -> None:
    key = await server.key("alpha", "viewer")
    with trio.fail_after(20):
        response = await server.client.get(SEARCH, params=params, headers=server.auth(key))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_content_search_over_http(server: Server) -> None:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    body = {
        "kind": "post",
        "tags": ["travel"],
        "translations": {
            "en": {"title": "Greetings from Cologne", "slug": "cologne", "body": "The *Dom*"},
            "de": {"title": "Grüße aus Köln", "slug": "koeln", "body": "Der **Dom**"},
        },
    }
    with trio.fail_after(30):
        node = (await server.client.post(NODES, json=body, headers=auth)).json()
        published = await server.client.post(f"{NODES}/{node['id']}/publish", headers=auth)
        token = published.headers[TOKEN]
        found = await server.client.get(
            SEARCH,
            params={"type": "content", "q": "dom", "status": "published", "min_token": token},
            headers=auth,
        )
        newest = await server.client.get(
            SEARCH,
            params={"type": "content", "sort": "-published_at", "min_token": token, "locale": "de"},
            headers=auth,
        )
    result = found.json()
    assert {(i["id"], i["locale"]) for i in result["items"]} == {
        (node["id"], "en"),
        (node["id"], "de"),
    }
    assert result["facets"]["tags"] == {"travel": 2}
    assert result["facets"]["status"] == {"published": 2}
    assert all(i["type"] == "content" for i in result["items"])
    assert [i["slug"] for i in newest.json()["items"]] == ["koeln"]


async def test_search_is_tenant_scoped(server: Server) -> None:
    alpha = await server.key("alpha", "admin")
    beta = await server.key("beta", "admin")
    with trio.fail_after(30):
        token = (await _create(server, alpha, _product("SECRET-1", "Secret mug"))).headers[TOKEN]
        mine = await server.client.get(
            SEARCH, params={"q": "secret", "min_token": token}, headers=server.auth(alpha)
        )
        theirs = await server.client.get(
            SEARCH, params={"q": "secret", "min_token": token}, headers=server.auth(beta)
        )
        crossed = await server.client.get(
            SEARCH, params={"q": "secret"}, headers=server.auth(beta, "alpha")
        )
    assert mine.json()["total"] == 1
    assert theirs.json() == {
        "items": [],
        "total": 0,
        "facets": {"status": {}, "kind": {}, "tags": {}, "attributes": {}, "price": []},
        "next_cursor": None,
    }
    assert crossed.status_code == 403
    assert "secret" not in crossed.text.lower()


@pytest.fixture
async def strict_lag(make_server: ServerFactory) -> Any:
    async with make_server(search_max_lag=0.0) as server:
        yield server


async def test_health_reports_the_lag_and_search_degraded_above_the_limit(
    strict_lag: Server,
) -> None:
    server = strict_lag
    key = await server.key("alpha", "admin")
    with trio.fail_after(30):
        healthy = (await server.client.get("/health")).json()["subsystems"]["search.lag"]
        assert healthy["status"] == "up"
        assert healthy["lag_events"] == 0
        assert healthy["applied_position"] == healthy["head_position"]
        await server.app.system.ref("/app/transport/relay").stop()
        token = int((await _create(server, key, _product("MUG-1", "Mug"))).headers[TOKEN])
        while True:  # the event waits in the outbox: its age grows past the limit of 0 s
            health = await server.client.get("/health")
            lag = health.json()["subsystems"]["search.lag"]
            if lag["status"] == "degraded":
                break
    assert lag["lag_events"] == 1
    assert lag["head_position"] == token
    assert lag["applied_position"] == token - 1
    assert lag["lag_seconds"] > 0
    # Degraded, not down: the search still answers (from the index as it is).
    assert health.status_code == 200
    assert (await server.client.get("/ready")).status_code == 200


async def test_a_kept_list_answer_is_dropped_when_its_tenant_changes(server: Server) -> None:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    pages = server.app.context.get(SearchService).pages
    with trio.fail_after(30):
        token = (await _create(server, key, _product("MUG-1", "Mug"))).headers[TOKEN]
        await server.client.get(PRODUCTS, params={"min_token": token}, headers=auth)
        first = await server.client.get(PRODUCTS, params={"limit": 5}, headers=auth)
        again = await server.client.get(PRODUCTS, params={"limit": 5}, headers=auth)
        assert again.content == first.content
        assert pages.statistics().hits >= 1
        token = (await _create(server, key, _product("MUG-2", "Mug two"))).headers[TOKEN]
        await server.client.get(PRODUCTS, params={"min_token": token}, headers=auth)
        # The index applied MUG-2 on this node: the kept page went with it.
        after = await server.client.get(PRODUCTS, params={"limit": 5}, headers=auth)
    assert {i["sku"] for i in after.json()["items"]} == {"MUG-1", "MUG-2"}
    assert len(after.json()["items"]) == 2
