"""Search never crosses tenants: random tenants, random documents, random queries, both stores.

Every tenant draws from the same vocabulary and skus, so a query that leaked
would find another tenant's rows; each search must find exactly the ids the
naive search over that tenant's own documents finds, and each list exactly
that tenant's products.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.modules.search.test_projection_machine import VOCABULARY, queries
from triotok.app import schemas_of
from triotok.modules.search import (
    ProductDoc,
    Projector,
    SearchReader,
    SearchRequest,
    matches,
    parse_query,
    words,
)
from triotok.store import open_store

T0 = datetime(2024, 5, 1, tzinfo=UTC)
TENANTS = 4

documents = st.lists(
    st.tuples(
        st.integers(0, TENANTS - 1),
        st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4).map(" ".join),
        st.sampled_from(("draft", "active")),
    ),
    min_size=1,
    max_size=12,
)


async def _check(url: str, docs: list[tuple[int, str, str]], texts: list[str]) -> None:
    suffix = uuid.uuid4().hex[:8]  # examples share the database, never their tenants
    tenants = [f"t{i}-{suffix}" for i in range(TENANTS)]
    rows = [
        ProductDoc(
            tenants[t],
            str(uuid.uuid4()),
            f"SKU-{n % 3}",
            title,
            "",
            100,
            "EUR",
            status,
            {},
            0,
            0,
            T0,
            T0,
            1,
        )
        for n, (t, title, status) in enumerate(docs)
    ]
    async with open_store(url, schemas=schemas_of()) as store:
        projector, reader = Projector(store.backend), SearchReader(store.backend)
        async with store.transaction() as tx:
            await projector.apply(tx, rows)
        for tenant in tenants:
            mine = [r for r in rows if r.tenant_id == tenant]
            listed = await reader.list_products(store, tenant, limit=100)
            assert {i["id"] for i in listed.items} == {r.id for r in mine}
            for text in texts:
                query = parse_query(text)
                assert query is not None
                expected = {r.id for r in mine if matches(query, words(r.title) + words(r.sku))}
                result = await reader.search(store, SearchRequest(tenant, query=query, limit=100))
                found = {i["id"] for i in result.items}
                assert found <= {r.id for r in mine}, "a search answered another tenant's row"
                assert found == expected, text
                assert result.total == len(expected)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(docs=documents, texts=st.lists(queries(), min_size=1, max_size=3))
def test_search_never_crosses_tenants(
    store_url: str, docs: list[tuple[int, str, str]], texts: list[str]
) -> None:
    async def example() -> None:
        with trio.fail_after(60):
            await _check(store_url, docs, texts)

    trio.run(example)
