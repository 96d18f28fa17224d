"""No N+1: a list page costs the same statements whatever its size, up to 100 rows.

Counted at the store (``tests/querycount.py``), for pages of 1, 10 and 100
products and content nodes served from the read models, and for searches
(the page, and the facets). Orders with their items come next, with the same
harness, once the orders module exists.
"""

from __future__ import annotations

import pytest
import trio

from tests.http.conftest import Server
from tests.querycount import count_statements

TOKEN = "X-Consistency-Token"


@pytest.fixture
async def hundred(server: Server) -> tuple[Server, dict[str, str]]:
    key = await server.key("alpha", "admin")
    auth = server.auth(key)
    token = "1"
    with trio.fail_after(120):
        for i in range(100):
            product = {
                "sku": f"P-{i}",
                "title": f"Mug number {i}",
                "price": 100 + i,
                "currency": "EUR",
                "attributes": {"color": ("blue", "red")[i % 2], "size": i % 5},
            }
            response = await server.client.post("/api/products", json=product, headers=auth)
            assert response.status_code == 201, response.text
            node = {
                "kind": "post",
                "tags": [f"t{i % 7}", "all"],
                "translations": {
                    "en": {"title": f"Post {i} about mugs", "slug": f"post-{i}", "body": "Mugs"},
                    "de": {"title": f"Beitrag {i}", "slug": f"beitrag-{i}", "body": "Tassen"},
                },
            }
            response = await server.client.post("/api/content/nodes", json=node, headers=auth)
            assert response.status_code == 201, response.text
            token = response.headers[TOKEN]
        ready = await server.client.get(
            "/api/content/nodes", params={"min_token": token, "limit": 1}, headers=auth
        )
        assert "X-Consistency-Stale" not in ready.headers
    return server, auth


#: (path, parameters, statements): a list page is one; a search three (page, counts, tags/attrs).
PAGES = [
    ("/api/products", {}, 1),
    ("/api/content/nodes", {}, 1),
    ("/api/search", {"type": "product", "q": "mug"}, 3),
    ("/api/search", {"type": "product", "attr.color": "blue"}, 3),
    ("/api/search", {"type": "content", "q": "mugs"}, 3),
    ("/api/search", {"type": "content", "tag": "all"}, 3),
]


async def test_a_page_costs_the_same_statements_whatever_its_size(
    hundred: tuple[Server, dict[str, str]],
) -> None:
    server, auth = hundred
    with trio.fail_after(120):
        for path, params, statements in PAGES:
            for limit in (1, 10, 100):
                with count_statements(server.app) as counted:
                    page = await server.client.get(
                        path, params={**params, "limit": limit}, headers=auth
                    )
                assert page.status_code == 200, page.text
                body = page.json()
                total = body.get("total", 100)
                assert total >= 50
                assert len(body["items"]) == min(limit, total), (path, params, limit)
                assert counted.total == statements, f"{path} {params} limit={limit}:\n{counted}"
