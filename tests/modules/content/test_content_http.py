"""The content API end to end on a real server: lifecycle, preconditions, lists, isolation.

Every accepted command writes its row and exactly one event in one unit of
work (checked against the outbox); refused commands write nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.http.conftest import Server

NODES = "/api/content/nodes"


def _page(slug: str = "hello", *, locale: str = "en", kind: str = "page", **extra: Any) -> Any:
    return {
        "kind": kind,
        "translations": {
            locale: {"title": slug.title(), "slug": slug, "body": f"# {slug}", **extra}
        },
        "tags": ["news"],
    }


async def _events(server: Server, node_id: str) -> list[str]:
    rows = await server.app.context.store.store.fetch(
        "SELECT event_type, payload FROM outbox ORDER BY id"
    )
    from triotok.transport import decode

    found = []
    for row in rows:
        envelope = decode(bytes(row["payload"]))
        payload = envelope.payload
        ident = getattr(payload, "node_id", None) or getattr(payload, "node", None)
        ident = getattr(ident, "node_id", ident)
        if str(ident) == node_id:
            found.append(str(row["event_type"]))
    return found


async def _create(server: Server, key: str, body: Any = None) -> httpx.Response:
    return await server.client.post(NODES, json=body or _page(), headers=server.auth(key))


async def test_a_page_is_created_published_archived_restored_and_deleted(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(30):
        created = await _create(server, admin)
        assert created.status_code == 201, created.text
        node = created.json()
        node_id = node["id"]
        assert node["status"] == "draft"
        assert node["version"] == 1
        assert created.headers["ETag"] == '"1"'
        assert created.headers["Location"] == f"{NODES}/{node_id}"

        published = await server.client.post(f"{NODES}/{node_id}/publish", headers=auth)
        assert published.json()["status"] == "published"
        assert published.json()["published_at"] is not None
        refused = await server.client.delete(
            f"{NODES}/{node_id}", headers={**auth, "If-Match": '"2"'}
        )
        assert refused.status_code == 409
        problem = refused.json()
        assert problem["code"] == "invalid_transition"
        assert problem["current"] == "published"
        assert problem["allowed"] == ["unpublish", "archive"]

        archived = await server.client.post(f"{NODES}/{node_id}/archive", headers=auth)
        assert archived.json()["status"] == "archived"
        restored = await server.client.post(f"{NODES}/{node_id}/restore", headers=auth)
        assert restored.json()["status"] == "draft"
        assert restored.json()["version"] == 4
        deleted = await server.client.delete(
            f"{NODES}/{node_id}", headers={**auth, "If-Match": '"4"'}
        )
        assert deleted.status_code == 204
        gone = await server.client.get(f"{NODES}/{node_id}", headers=auth)
        assert gone.status_code == 404
        assert await _events(server, node_id) == [
            "content.node.created",
            "content.node.published",
            "content.node.archived",
            "content.node.restored",
            "content.node.deleted",
        ]


async def test_patch_needs_the_version_and_refuses_a_stale_one(server: Server) -> None:
    editor = await server.key("alpha", "editor")
    auth = server.auth(editor)
    with trio.fail_after(30):
        node_id = (await _create(server, editor)).json()["id"]
        url = f"{NODES}/{node_id}"
        change = {"tags": ["a", "b"]}
        missing = await server.client.patch(url, json=change, headers=auth)
        assert missing.status_code == 428
        assert missing.json()["code"] == "precondition_required"
        stale = await server.client.patch(url, json=change, headers={**auth, "If-Match": '"7"'})
        assert stale.status_code == 412
        assert stale.json()["code"] == "version_mismatch"
        ok = await server.client.patch(url, json=change, headers={**auth, "If-Match": '"1"'})
        assert ok.status_code == 200, ok.text
        assert ok.json()["tags"] == ["a", "b"]
        assert ok.headers["ETag"] == '"2"'
        by_body = await server.client.patch(url, json={**change, "version": 2}, headers=auth)
        assert by_body.json()["version"] == 3
        # Refused commands wrote nothing.
        assert await _events(server, node_id) == [
            "content.node.created",
            "content.node.updated",
            "content.node.updated",
        ]


async def test_get_answers_304_while_the_version_matches(server: Server) -> None:
    viewer = await server.key("alpha", "viewer")
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        node_id = (await _create(server, editor)).json()["id"]
        url = f"{NODES}/{node_id}"
        first = await server.client.get(url, headers=server.auth(viewer))
        assert first.status_code == 200
        etag = first.headers["ETag"]
        again = await server.client.get(url, headers={**server.auth(viewer), "If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        other = await server.client.get(
            url, headers={**server.auth(viewer), "If-None-Match": '"99"'}
        )
        assert other.status_code == 200


async def test_publishing_needs_content_admin(server: Server) -> None:
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        node_id = (await _create(server, editor)).json()["id"]
        refused = await server.client.post(
            f"{NODES}/{node_id}/publish", headers=server.auth(editor)
        )
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"


async def test_slugs_are_unique_per_tenant_and_locale(server: Server) -> None:
    alpha = await server.key("alpha", "editor")
    beta = await server.key("beta", "editor")
    with trio.fail_after(30):
        assert (await _create(server, alpha, _page("about"))).status_code == 201
        taken = await _create(server, alpha, _page("about"))
        assert taken.status_code == 409
        assert taken.json()["code"] == "slug_taken"
        other_locale = await _create(server, alpha, _page("about", locale="de"))
        assert other_locale.status_code == 201
        other_tenant = await _create(server, beta, _page("about"))
        assert other_tenant.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "Page!", "translations": {"en": {"title": "T", "slug": "t"}}}, "kind"),
        ({"kind": "page", "translations": {"english": {"title": "T", "slug": "t"}}}, None),
        ({"kind": "page", "translations": {"en": {"title": "T", "slug": "Not A Slug"}}}, None),
        ({"kind": "page", "translations": {"en": {"title": "T\u202e", "slug": "t"}}}, None),
        ({"kind": "page", "translations": {}}, None),
        (
            {
                "kind": "page",
                "translations": {"en": {"title": "T", "slug": "t", "body_format": "php"}},
            },
            None,
        ),
    ],
)
async def test_bad_input_is_a_problem_and_nothing_is_written(
    server: Server, body: Any, field: str | None
) -> None:
    editor = await server.key("alpha", "editor")
    with trio.fail_after(30):
        response = await _create(server, editor, body)
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        count = await server.app.context.store.store.fetchval("SELECT count(*) FROM content_nodes")
    assert count == 0


async def test_lists_filter_and_page_with_an_opaque_cursor(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        ids = []
        for i in range(7):
            body = _page(f"post-{i}", kind="post" if i % 2 else "page")
            body["tags"] = ["odd"] if i % 2 else ["even"]
            ids.append((await _create(server, admin, body)).json()["id"])
        published = await server.client.post(f"{NODES}/{ids[0]}/publish", headers=auth)
        # Lists are served by the search module's read model: wait for the last write.
        fresh = await server.client.get(
            NODES, params={"min_token": published.headers["X-Consistency-Token"]}, headers=auth
        )
        assert "X-Consistency-Stale" not in fresh.headers
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await server.client.get(NODES, params=params, headers=auth)).json()
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        posts = (await server.client.get(NODES, params={"kind": "post"}, headers=auth)).json()
        assert {n["kind"] for n in posts["items"]} == {"post"}
        assert len(posts["items"]) == 3
        odd = (await server.client.get(NODES, params={"tag": "odd"}, headers=auth)).json()
        assert len(odd["items"]) == 3
        published = (
            await server.client.get(NODES, params={"status": "published"}, headers=auth)
        ).json()
        assert [n["id"] for n in published["items"]] == [ids[0]]
        german = (await server.client.get(NODES, params={"locale": "de"}, headers=auth)).json()
        assert german["items"] == []
        bad = await server.client.get(NODES, params={"cursor": "nope"}, headers=auth)
        assert bad.status_code == 400


async def test_a_list_page_costs_one_query_whatever_its_size(server: Server) -> None:
    from triotok.modules.search import SearchService

    admin = await server.key("alpha", "admin")
    reader = server.services.context.get(SearchService).reader()
    with trio.fail_after(60):
        for i in range(30):
            token = (await _create(server, admin, _page(f"n-{i}"))).headers["X-Consistency-Token"]
        for limit in (1, 10, 30):
            before = reader.queries
            page = await server.client.get(
                NODES, params={"limit": limit, "min_token": token}, headers=server.auth(admin)
            )
            assert len(page.json()["items"]) == limit
            assert reader.queries - before == 1


async def test_tenant_a_never_sees_or_changes_tenant_bs_nodes(server: Server) -> None:
    alpha = await server.key("alpha", "admin")
    beta = await server.key("beta", "admin")
    with trio.fail_after(30):
        created = await _create(server, alpha, _page("secret"))
        node_id = created.json()["id"]
        token = created.headers["X-Consistency-Token"]
        url = f"{NODES}/{node_id}"
        as_beta = server.auth(beta)
        attempts = [
            await server.client.get(url, headers=as_beta),
            await server.client.patch(
                url, json={"tags": ["x"]}, headers={**as_beta, "If-Match": '"1"'}
            ),
            await server.client.delete(url, headers={**as_beta, "If-Match": '"1"'}),
            *[
                await server.client.post(f"{url}/{action}", headers=as_beta)
                for action in ("publish", "unpublish", "archive", "restore")
            ],
        ]
        for response in attempts:
            assert response.status_code == 404, response.text
            assert "secret" not in response.text.lower()
        mine_listed = await server.client.get(
            NODES, params={"min_token": token}, headers=server.auth(alpha)
        )
        assert [n["id"] for n in mine_listed.json()["items"]] == [node_id]
        listed = (
            await server.client.get(NODES, params={"min_token": token}, headers=as_beta)
        ).json()
        assert listed["items"] == []
        # Beta's key naming alpha's tenant is refused outright.
        crossed = await server.client.get(url, headers=server.auth(beta, "alpha"))
        assert crossed.status_code == 403
        mine = (await server.client.get(url, headers=server.auth(alpha))).json()
    assert mine["version"] == 1
    assert mine["tags"] == ["news"]
