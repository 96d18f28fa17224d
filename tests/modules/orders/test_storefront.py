"""The ``storefront`` role: the public catalogue, placing orders, and only its own orders.

A storefront key reads active products and published content (the rest is
404, never listed and never found by search), places orders, and reads the orders its own key
placed; another storefront key of the same tenant does not see them. It
changes nothing else (403).
"""

from __future__ import annotations

import trio

from tests.http.conftest import Server
from triotok.modules.access import ApiKeyRepository, Role

from .support import ORDERS, place, stocked_product

NODES = "/api/content/nodes"


async def test_a_storefront_sees_the_public_catalogue_only(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    shop = server.auth(await server.key("alpha", "storefront"))
    with trio.fail_after(60):
        active = await stocked_product(server, admin, 3)
        draft = await server.client.post(
            "/api/products",
            json={"sku": "DRAFT-1", "title": "Soon", "price": 100, "currency": "EUR"},
            headers=server.auth(admin),
        )
        draft_id = draft.json()["id"]
        # Lists and search answer from the read models: wait for the draft's event.
        fresh = {"min_token": draft.headers["X-Consistency-Token"]}
        listed = await server.client.get("/api/products", params=fresh, headers=shop)
        assert [p["id"] for p in listed.json()["items"]] == [active]
        drafts = await server.client.get(
            "/api/products", params={**fresh, "status": "draft"}, headers=shop
        )
        assert drafts.json()["items"] == []
        found = await server.client.get("/api/search", params={**fresh, "q": "soon"}, headers=shop)
        assert found.status_code == 200, found.text
        assert found.json()["items"] == []
        assert found.json()["total"] == 0
        asked = await server.client.get(
            "/api/search", params={**fresh, "q": "soon", "status": "draft"}, headers=shop
        )
        assert asked.json()["total"] == 0
        # The admin's search finds the draft (and the storefront's answer was not kept for it).
        admins = await server.client.get(
            "/api/search", params={"q": "soon"}, headers=server.auth(admin)
        )
        assert [p["id"] for p in admins.json()["items"]] == [draft_id]
        shops = await server.client.get("/api/search", params={"q": "soon"}, headers=shop)
        assert shops.json()["items"] == []
        assert (await server.client.get(f"/api/products/{active}", headers=shop)).is_success
        hidden = await server.client.get(f"/api/products/{draft_id}", headers=shop)
        assert hidden.status_code == 404
        assert "Soon" not in hidden.text
        # The admin still sees everything.
        every = (
            await server.client.get("/api/products", params=fresh, headers=server.auth(admin))
        ).json()
        assert len(every["items"]) == 2

        def node(slug: str) -> dict[str, object]:
            return {"kind": "page", "translations": {"en": {"title": slug, "slug": slug}}}

        page = await server.client.post(NODES, json=node("public"), headers=server.auth(admin))
        secret = await server.client.post(NODES, json=node("secret"), headers=server.auth(admin))
        page_id, secret_id = page.json()["id"], secret.json()["id"]
        published = await server.client.post(
            f"{NODES}/{page_id}/publish", headers=server.auth(admin)
        )
        assert published.status_code == 200, published.text
        fresh = {"min_token": published.headers["X-Consistency-Token"]}
        nodes = (await server.client.get(NODES, params=fresh, headers=shop)).json()["items"]
        assert [n["id"] for n in nodes] == [page_id]
        assert (await server.client.get(f"{NODES}/{page_id}", headers=shop)).is_success
        assert (await server.client.get(f"{NODES}/{secret_id}", headers=shop)).status_code == 404
        assert "secret" not in (await server.client.get(NODES, params=fresh, headers=shop)).text
        content = await server.client.get(
            "/api/search", params={**fresh, "type": "content", "q": "secret"}, headers=shop
        )
        assert content.json()["items"] == []


async def test_a_storefront_places_orders_and_reads_only_its_own(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    shop_key = await server.key("alpha", "storefront")
    shop = server.auth(shop_key)
    repository = server.services.context.get(ApiKeyRepository)
    _, other_key = await repository.create("alpha", Role.STOREFRONT, actor="test")
    other = server.auth(other_key)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        mine = (await place(server, shop_key, [(mug, 1)])).json()
        assert mine["status"] == "confirmed"
        theirs = (await place(server, other_key, [(mug, 2)])).json()
        by_admin = (await place(server, admin, [(mug, 3)])).json()

        listed = (await server.client.get(ORDERS, headers=shop)).json()["items"]
        assert [o["id"] for o in listed] == [mine["id"]]
        assert (await server.client.get(f"{ORDERS}/{mine['id']}", headers=shop)).is_success
        for foreign in (theirs, by_admin):
            hidden = await server.client.get(f"{ORDERS}/{foreign['id']}", headers=shop)
            assert hidden.status_code == 404
        assert [
            o["id"] for o in (await server.client.get(ORDERS, headers=other)).json()["items"]
        ] == [theirs["id"]]
        everyone = (await server.client.get(ORDERS, headers=server.auth(admin))).json()["items"]
        assert len(everyone) == 3

        # Nothing else: no payment, shipping, cancelling, stock or catalogue changes.
        url = f"{ORDERS}/{mine['id']}"
        refused = [
            await server.client.post(f"{url}/pay", headers=shop),
            await server.client.post(f"{url}/ship", json={"tracking_number": "T"}, headers=shop),
            await server.client.post(f"{url}/cancel", json={}, headers=shop),
            await server.client.post(
                f"/api/products/{mug}/inventory", json={"delta": 1, "reason": "x"}, headers=shop
            ),
            await server.client.post(
                "/api/products",
                json={"sku": "X-1", "title": "X", "price": 1, "currency": "EUR"},
                headers=shop,
            ),
            await server.client.get("/api/audit", headers=shop),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
