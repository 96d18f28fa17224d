"""The products API end to end on a real server: lifecycle, preconditions, stock, lists, isolation.

Every accepted command writes its row and exactly one event in one unit of
work (checked against the outbox); refused commands write nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server
from triotok.transport import decode

PRODUCTS = "/api/products"


def _product(sku: str = "MUG-1", **extra: Any) -> Any:
    return {"sku": sku, "title": f"Mug {sku}", "price": 1290, "currency": "EUR", **extra}


async def _events(server: Server, product_id: str) -> list[str]:
    rows = await server.app.context.store.store.fetch(
        "SELECT event_type, payload FROM outbox ORDER BY id"
    )
    found = []
    for row in rows:
        payload = decode(bytes(row["payload"])).payload
        holder = getattr(payload, "product", None) or getattr(payload, "line", None)
        if holder is not None and str(holder.product_id) == product_id:
            found.append(str(row["event_type"]))
    return found


async def _create(server: Server, key: str, body: Any = None) -> httpx.Response:
    return await server.client.post(PRODUCTS, json=body or _product(), headers=server.auth(key))


async def test_a_product_is_created_activated_stocked_and_archived(server: Server) -> None:
    editor = await server.key("alpha", "editor")
    auth = server.auth(editor)
    with trio.fail_after(30):
        created = await _create(server, editor, _product(attributes={"color": "blue", "ml": 350}))
        assert created.status_code == 201, created.text
        product = created.json()
        product_id = product["id"]
        url = f"{PRODUCTS}/{product_id}"
        assert (product["status"], product["version"]) == ("draft", 1)
        assert (product["on_hand"], product["reserved"], product["available"]) == (0, 0, 0)
        assert product["attributes"] == {"color": "blue", "ml": 350}
        assert created.headers["ETag"] == '"1"'
        assert created.headers["Location"] == url

        active = await server.client.patch(
            url, json={"status": "active", "price": 990}, headers={**auth, "If-Match": '"1"'}
        )
        assert active.status_code == 200, active.text
        assert (active.json()["status"], active.json()["price"]) == ("active", 990)
        stocked = await server.client.post(
            f"{url}/inventory", json={"delta": 12, "reason": "delivery"}, headers=auth
        )
        assert stocked.status_code == 200, stocked.text
        assert (stocked.json()["on_hand"], stocked.json()["available"]) == (12, 12)
        assert stocked.headers["ETag"] == '"3"'
        taken = await server.client.post(
            f"{url}/inventory", json={"delta": -5, "reason": "write-off"}, headers=auth
        )
        assert taken.json()["on_hand"] == 7

        archived = await server.client.delete(url, headers={**auth, "If-Match": '"4"'})
        assert archived.status_code == 200, archived.text
        assert archived.json()["status"] == "archived"
        again = await server.client.delete(url, headers={**auth, "If-Match": '"5"'})
        assert again.status_code == 409
        assert again.json()["code"] == "invalid_transition"
        edit = await server.client.patch(
            url, json={"title": "New"}, headers={**auth, "If-Match": '"5"'}
        )
        assert edit.status_code == 409
        assert edit.json()["code"] == "product_archived"
        restored = await server.client.patch(
            url, json={"status": "draft", "title": "New"}, headers={**auth, "If-Match": '"5"'}
        )
        assert (restored.json()["status"], restored.json()["title"]) == ("draft", "New")
        # Archived products stay readable: orders refer to them.
        assert (await server.client.get(url, headers=auth)).status_code == 200
        assert await _events(server, product_id) == [
            "product.created",
            "product.updated",
            "inventory.adjusted",
            "inventory.adjusted",
            "product.archived",
            "product.updated",
        ]


async def test_a_delta_below_the_reserved_units_is_a_409_and_writes_nothing(
    server: Server,
) -> None:
    editor = await server.key("alpha", "editor")
    auth = server.auth(editor)
    with trio.fail_after(30):
        product_id = (await _create(server, editor)).json()["id"]
        url = f"{PRODUCTS}/{product_id}"
        await server.client.post(
            f"{url}/inventory", json={"delta": 3, "reason": "in"}, headers=auth
        )
        # Reserve two units the way the orders saga does (a conditional update).
        await server.app.context.store.store.execute(
            "UPDATE commerce_products SET reserved = 2, version = version + 1 WHERE id = $1",
            product_id,
        )
        refused = await server.client.post(
            f"{url}/inventory", json={"delta": -2, "reason": "count"}, headers=auth
        )
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["code"] == "stock_below_reserved"
        assert (problem["on_hand"], problem["reserved"], problem["delta"]) == (3, 2, -2)
        below_zero = await server.client.post(
            f"{url}/inventory", json={"delta": -4, "reason": "count"}, headers=auth
        )
        assert below_zero.status_code == 409
        fine = await server.client.post(
            f"{url}/inventory", json={"delta": -1, "reason": "count"}, headers=auth
        )
        assert (fine.json()["on_hand"], fine.json()["reserved"], fine.json()["available"]) == (
            2,
            2,
            0,
        )
        assert await _events(server, product_id) == [
            "product.created",
            "inventory.adjusted",
            "inventory.adjusted",
        ]


async def test_patch_and_delete_need_the_version_and_refuse_a_stale_one(server: Server) -> None:
    editor = await server.key("alpha", "editor")
    auth = server.auth(editor)
    with trio.fail_after(30):
        product_id = (await _create(server, editor)).json()["id"]
        url = f"{PRODUCTS}/{product_id}"
        change = {"title": "Better mug"}
        missing = await server.client.patch(url, json=change, headers=auth)
        assert missing.status_code == 428
        assert missing.json()["code"] == "precondition_required"
        assert (await server.client.delete(url, headers=auth)).status_code == 428
        stale = await server.client.patch(url, json=change, headers={**auth, "If-Match": '"7"'})
        assert stale.status_code == 412
        assert stale.json()["code"] == "version_mismatch"
        stale_delete = await server.client.delete(url, headers={**auth, "If-Match": '"7"'})
        assert stale_delete.status_code == 412
        ok = await server.client.patch(url, json=change, headers={**auth, "If-Match": '"1"'})
        assert ok.status_code == 200, ok.text
        assert ok.headers["ETag"] == '"2"'
        by_body = await server.client.patch(url, json={"price": 5, "version": 2}, headers=auth)
        assert by_body.json()["version"] == 3
        assert await _events(server, product_id) == [
            "product.created",
            "product.updated",
            "product.updated",
        ]


async def test_get_answers_304_while_the_version_matches(server: Server) -> None:
    viewer = await server.key("alpha", "viewer")
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        product_id = (await _create(server, editor)).json()["id"]
        url = f"{PRODUCTS}/{product_id}"
        first = await server.client.get(url, headers=server.auth(viewer))
        assert first.status_code == 200
        etag = first.headers["ETag"]
        headers = {**server.auth(viewer), "If-None-Match": etag}
        again = await server.client.get(url, headers=headers)
        assert again.status_code == 304
        assert again.content == b""
        # A stock change is a new version of the representation.
        await server.client.post(
            f"{url}/inventory", json={"delta": 1, "reason": "in"}, headers=server.auth(editor)
        )
        changed = await server.client.get(url, headers=headers)
        assert changed.status_code == 200
        assert changed.json()["on_hand"] == 1


async def test_viewers_read_editors_write(server: Server) -> None:
    viewer = await server.key("alpha", "viewer")
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        refused = await _create(server, viewer)
        assert refused.status_code == 403
        created = await _create(server, editor)
        product_id = created.json()["id"]
        token = created.headers["X-Consistency-Token"]
        stock = await server.client.post(
            f"{PRODUCTS}/{product_id}/inventory",
            json={"delta": 1, "reason": "in"},
            headers=server.auth(viewer),
        )
        assert stock.status_code == 403
        listed = await server.client.get(
            PRODUCTS, params={"min_token": token}, headers=server.auth(viewer)
        )
    assert "X-Consistency-Stale" not in listed.headers
    assert [p["id"] for p in listed.json()["items"]] == [product_id]


async def test_skus_are_unique_per_tenant(server: Server) -> None:
    alpha = await server.key("alpha", "editor")
    beta = await server.key("beta", "editor")
    with trio.fail_after(30):
        first = await _create(server, alpha, _product("SKU-1"))
        assert first.status_code == 201
        taken = await _create(server, alpha, _product("SKU-1"))
        assert taken.status_code == 409
        assert taken.json()["code"] == "sku_taken"
        other = (await _create(server, alpha, _product("SKU-2"))).json()
        renamed = await server.client.patch(
            f"{PRODUCTS}/{other['id']}",
            json={"sku": "SKU-1"},
            headers={**server.auth(alpha), "If-Match": '"1"'},
        )
        assert renamed.status_code == 409
        assert renamed.json()["code"] == "sku_taken"
        assert (await _create(server, beta, _product("SKU-1"))).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        _product("bad sku"),
        _product(currency="EURO"),
        _product(currency="XXX"),  # ISO 4217's "no currency": not a price's currency
        _product(currency="eur"),
        _product(price=-1),
        _product(price=1.5),
        _product(price=10**13),
        _product(title=""),
        _product(title="Mug\u202e"),
        _product(attributes={"Color": "blue"}),
        _product(attributes={"color": ["blue"]}),
        _product(attributes={"color": None}),
        _product(attributes={f"a{i}": i for i in range(33)}),
        _product(attributes={"n": 2**60}),
        _product(status="active"),
        {"sku": "S", "title": "T", "price": 1},
    ],
)
async def test_bad_input_is_a_problem_and_nothing_is_written(server: Server, body: Any) -> None:
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        response = await _create(server, editor, body)
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        count = await server.app.context.store.store.fetchval(
            "SELECT count(*) FROM commerce_products"
        )
    assert count == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"price": -5}),
        ("PATCH", "", {"status": "archived"}),
        ("PATCH", "", {"currency": "ABC"}),
        ("PATCH", "", {"nope": 1}),
        ("POST", "/inventory", {"delta": 1}),
        ("POST", "/inventory", {"delta": 10**10, "reason": "x"}),
        ("POST", "/inventory", {"delta": "1", "reason": "x"}),
        ("POST", "/inventory", {"delta": 1, "reason": ""}),
    ],
)
async def test_bad_changes_are_problems_and_nothing_is_written(
    server: Server, method: str, suffix: str, body: Any
) -> None:
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        product_id = (await _create(server, editor)).json()["id"]
        response = await server.client.request(
            method,
            f"{PRODUCTS}/{product_id}{suffix}",
            json=body,
            headers={**server.auth(editor), "If-Match": '"1"'},
        )
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        bad_id = await server.client.get(f"{PRODUCTS}/not-a-uuid", headers=server.auth(editor))
        assert bad_id.status_code in (400, 404)
        assert await _events(server, product_id) == ["product.created"]


async def test_lists_filter_and_page_with_an_opaque_cursor_in_one_query(server: Server) -> None:
    from triotok.modules.search import SearchService

    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    # Lists are served by the search module's read model (one query a page).
    repository = server.services.context.get(SearchService).reader()
    with trio.fail_after(60):
        ids = [(await _create(server, admin, _product(f"P-{i}"))).json()["id"] for i in range(7)]
        activated = await server.client.patch(
            f"{PRODUCTS}/{ids[0]}", json={"status": "active"}, headers={**auth, "If-Match": '"1"'}
        )
        fresh = await server.client.get(
            PRODUCTS, params={"min_token": activated.headers["X-Consistency-Token"]}, headers=auth
        )
        assert "X-Consistency-Stale" not in fresh.headers
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            before = repository.queries
            page = (await server.client.get(PRODUCTS, params=params, headers=auth)).json()
            assert repository.queries - before == 1
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        active = await server.client.get(PRODUCTS, params={"status": "active"}, headers=auth)
        assert [p["id"] for p in active.json()["items"]] == [ids[0]]
        by_sku = (await server.client.get(PRODUCTS, params={"sku": "P-3"}, headers=auth)).json()
        assert [p["id"] for p in by_sku["items"]] == [ids[3]]
        bad = await server.client.get(PRODUCTS, params={"cursor": "nope"}, headers=auth)
        assert bad.status_code == 400
        for limit in (1, 7):
            before = repository.queries
            page = await server.client.get(PRODUCTS, params={"limit": limit}, headers=auth)
            assert len(page.json()["items"]) == limit
            assert repository.queries - before == 1


async def test_tenant_a_never_sees_or_changes_tenant_bs_products(server: Server) -> None:
    alpha = await server.key("alpha", "admin")
    beta = await server.key("beta", "admin")
    with trio.fail_after(30):
        created = await _create(server, alpha, _product("SECRET-1"))
        product_id = created.json()["id"]
        token = created.headers["X-Consistency-Token"]
        url = f"{PRODUCTS}/{product_id}"
        as_beta = server.auth(beta)
        # The index has the product (alpha sees it), and beta never does.
        seen = await server.client.get(
            PRODUCTS, params={"min_token": token}, headers=server.auth(alpha)
        )
        assert [p["id"] for p in seen.json()["items"]] == [product_id]
        attempts = [
            await server.client.get(url, headers=as_beta),
            await server.client.patch(
                url, json={"title": "x"}, headers={**as_beta, "If-Match": '"1"'}
            ),
            await server.client.delete(url, headers={**as_beta, "If-Match": '"1"'}),
            await server.client.post(
                f"{url}/inventory", json={"delta": 5, "reason": "x"}, headers=as_beta
            ),
        ]
        for response in attempts:
            assert response.status_code == 404, response.text
            assert "secret" not in response.text.lower()
        listed = (
            await server.client.get(PRODUCTS, params={"min_token": token}, headers=as_beta)
        ).json()
        assert listed["items"] == []
        by_sku = await server.client.get(PRODUCTS, params={"sku": "SECRET-1"}, headers=as_beta)
        assert by_sku.json()["items"] == []
        crossed = await server.client.get(url, headers=server.auth(beta, "alpha"))
        assert crossed.status_code == 403
        mine = (await server.client.get(url, headers=server.auth(alpha))).json()
    assert (mine["version"], mine["title"], mine["on_hand"]) == (1, "Mug SECRET-1", 0)
