"""Full text on both stores: one table of documents and queries, the same answers everywhere.

SQLite (FTS5, ``unicode61 remove_diacritics 2``) and PostgreSQL (``tsvector``,
GIN, the ``simple`` configuration) get the same words, so every row of the
table must find exactly the same documents on both, and agree with the
naive meaning of the query (``matches``). Filters, facets, sorting, keyset
cursors and tenant isolation are checked on the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trio

from triotok.app import schemas_of
from triotok.modules.search import (
    NodeDoc,
    ProductDoc,
    Projector,
    SearchReader,
    SearchRequest,
    TranslationDoc,
    matches,
    parse_query,
    words,
)
from triotok.modules.search._reader import decode_search_cursor
from triotok.store import Store, open_store

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
TENANT, OTHER = "acme", "globex"

#: sku: (title, description, price, status, attributes)
PRODUCTS = {
    "MUG-BLUE": (
        "Blue mug, 350 ml",
        "Stoneware, dishwasher safe",
        1290,
        "active",
        {"color": "blue", "ml": 350},
    ),
    "MUG-RED": (
        "Red mug",
        "A cracked red mug, reheated coffee stains",
        990,
        "active",
        {"color": "red"},
    ),
    "CUP-CREME": ("Crème brûlée cup", "For the dessert lover", 2490, "draft", {"color": "white"}),
    "TEAPOT": (
        "Teapot",
        "Blue glaze, holds 1.2 l of tea",
        5400,
        "active",
        {"color": "blue", "framed": False},
    ),
    "POSTER-A2": ("Poster, A2", "A mug and a teapot, framed", 1500, "archived", {"format": "A2"}),
}


def _tokens(sku: str) -> list[str]:
    title, description, _, _, attributes = PRODUCTS[sku]
    values = [v for v in attributes.values() if isinstance(v, str)]
    return words(title) + words(sku) + words(description) + [w for v in values for w in words(v)]


#: (query, skus it finds): the same on both stores, and what ``matches`` says.
CASES = [
    ("mug", {"MUG-BLUE", "MUG-RED", "POSTER-A2"}),
    ("MUG", {"MUG-BLUE", "MUG-RED", "POSTER-A2"}),
    ("blue mug", {"MUG-BLUE"}),
    ("mug blue", {"MUG-BLUE"}),
    ('"blue mug"', {"MUG-BLUE"}),
    ('"mug blue"', {"MUG-BLUE"}),  # the sku MUG-BLUE follows the title: "... ml mug blue"
    ('"red mug"', {"MUG-RED"}),
    ('"mug red"', {"MUG-RED"}),
    ('"cracked mug"', set()),
    ("mu*", {"MUG-BLUE", "MUG-RED", "POSTER-A2"}),
    ("te*", {"TEAPOT", "POSTER-A2"}),
    ('"blue gl*"', {"TEAPOT"}),
    ("mug -red", {"MUG-BLUE", "POSTER-A2"}),
    ("mug -re*", {"MUG-BLUE", "POSTER-A2"}),
    ('mug -"red mug"', {"MUG-BLUE", "POSTER-A2"}),
    ("creme brulee", {"CUP-CREME"}),
    ("CRÈME", {"CUP-CREME"}),
    ("350", {"MUG-BLUE"}),
    ("1", {"TEAPOT"}),
    ("white", {"CUP-CREME"}),  # string attribute values are text
    ("a2 poster", {"POSTER-A2"}),
    ("and or not", set()),
    ("nothing-here", set()),
]


@pytest.fixture
async def indexed(store_url: str) -> AsyncIterator[tuple[Store, SearchReader, dict[str, str]]]:
    async with open_store(store_url, schemas=schemas_of()) as store:
        projector = Projector(store.backend)
        ids: dict[str, str] = {}
        docs = []
        for n, (sku, (title, description, price, status, attributes)) in enumerate(
            PRODUCTS.items()
        ):
            ids[sku] = str(uuid.UUID(int=n + 1))
            at = T0 + timedelta(minutes=n)
            docs.append(
                ProductDoc(
                    TENANT,
                    ids[sku],
                    sku,
                    title,
                    description,
                    price,
                    "EUR",
                    status,
                    attributes,
                    10 * n,
                    n,
                    at,
                    at,
                    2,
                )
            )
            # The same sku and text in another tenant: never found from the first.
            docs.append(
                ProductDoc(
                    OTHER,
                    str(uuid.uuid4()),
                    sku,
                    title,
                    description,
                    price,
                    "EUR",
                    status,
                    attributes,
                    0,
                    0,
                    at,
                    at,
                    1,
                )
            )
        async with store.transaction() as tx:
            await projector.apply(tx, docs)
        yield store, SearchReader(store.backend), ids


@pytest.mark.parametrize(("text", "expected"), CASES)
async def test_each_query_finds_the_same_products_on_both_stores(
    indexed: tuple[Store, SearchReader, dict[str, str]], text: str, expected: set[str]
) -> None:
    store, reader, ids = indexed
    query = parse_query(text)
    assert query is not None
    naive = {sku for sku in PRODUCTS if matches(query, _tokens(sku))}
    assert naive == expected, "the table disagrees with the meaning of the query"
    with trio.fail_after(10):
        result = await reader.search(store, SearchRequest(TENANT, query=query, limit=100))
    assert {item["sku"] for item in result.items} == expected
    assert {item["id"] for item in result.items} <= set(ids.values())
    assert result.total == len(expected)
    assert sum(result.facets["status"].values()) == len(expected)
    for item in result.items:
        assert item["score"] is not None
        assert "<mark>" in item["highlights"]["title"] + item["highlights"]["snippet"] or text in (
            "1",
            "white",
            "350",
        )


async def test_relevance_ranks_title_hits_first(
    indexed: tuple[Store, SearchReader, dict[str, str]],
) -> None:
    store, reader, _ = indexed
    with trio.fail_after(10):
        result = await reader.search(store, SearchRequest(TENANT, query=parse_query("teapot")))
    # "Teapot" is the title of one and in the description of the other.
    assert [item["sku"] for item in result.items] == ["TEAPOT", "POSTER-A2"]


async def test_filters_and_facets(indexed: tuple[Store, SearchReader, dict[str, str]]) -> None:
    store, reader, _ = indexed
    with trio.fail_after(10):
        everything = await reader.search(store, SearchRequest(TENANT, limit=100))
        assert everything.total == 5
        assert everything.facets["status"] == {"active": 3, "draft": 1, "archived": 1}
        assert everything.facets["attributes"]["color"] == {"blue": 2, "red": 1, "white": 1}
        assert everything.facets["attributes"]["framed"] == {"false": 1}
        assert everything.facets["price"] == [
            {"min": 0, "max": 1000, "count": 1},
            {"min": 1000, "max": 2500, "count": 3},
            {"min": 5000, "max": 10000, "count": 1},
        ]
        blue = await reader.search(
            store, SearchRequest(TENANT, attributes={"color": ("blue",)}, status="active")
        )
        assert {i["sku"] for i in blue.items} == {"MUG-BLUE", "TEAPOT"}
        either = await reader.search(
            store, SearchRequest(TENANT, attributes={"color": ("red", "white")})
        )
        assert {i["sku"] for i in either.items} == {"MUG-RED", "CUP-CREME"}
        cheap = await reader.search(
            store, SearchRequest(TENANT, query=parse_query("mug"), price_min=1000, price_max=1500)
        )
        assert {i["sku"] for i in cheap.items} == {"MUG-BLUE", "POSTER-A2"}
        assert cheap.facets["status"] == {"active": 1, "archived": 1}
        by_price = await reader.search(store, SearchRequest(TENANT, sort="-price", limit=100))
        assert [i["price"] for i in by_price.items] == [5400, 2490, 1500, 1290, 990]


@pytest.mark.parametrize(
    ("text", "sort"), [("", "relevance"), ("mug", "relevance"), ("", "price"), ("", "-price")]
)
async def test_keyset_cursors_walk_every_match_once(
    indexed: tuple[Store, SearchReader, dict[str, str]], text: str, sort: str
) -> None:
    store, reader, _ = indexed
    request = SearchRequest(TENANT, query=parse_query(text), sort=sort, limit=2)
    seen = []
    with trio.fail_after(10):
        whole = await reader.search(
            store, SearchRequest(TENANT, query=request.query, sort=request.sort, limit=100)
        )
        while True:
            page = await reader.search(store, request)
            seen += [i["sku"] for i in page.items]
            if page.next_cursor is None:
                break
            after = decode_search_cursor(page.next_cursor, sort, reader.arity(request))
            request = SearchRequest(
                TENANT, query=request.query, sort=request.sort, limit=2, after=after
            )
    assert seen == [i["sku"] for i in whole.items]
    assert len(seen) == whole.total


async def test_search_and_lists_never_cross_tenants(
    indexed: tuple[Store, SearchReader, dict[str, str]],
) -> None:
    store, reader, ids = indexed
    with trio.fail_after(10):
        for text in ("", "mug", "te*", "blue -red"):
            mine = await reader.search(
                store, SearchRequest(TENANT, query=parse_query(text), limit=100)
            )
            assert {i["id"] for i in mine.items} <= set(ids.values())
        listed = await reader.list_products(store, TENANT, limit=100)
        assert {i["id"] for i in listed.items} == set(ids.values())
        nobody = await reader.search(store, SearchRequest("initech", query=parse_query("mug")))
        assert (nobody.items, nobody.total) == ([], 0)


async def test_content_is_searched_per_locale(store_url: str) -> None:
    async with open_store(store_url, schemas=schemas_of()) as store:
        projector = Projector(store.backend)
        reader = SearchReader(store.backend)
        node_id = str(uuid.uuid4())
        node = NodeDoc(
            TENANT,
            node_id,
            "post",
            "published",
            (
                TranslationDoc(
                    "de", "Grüße aus Köln", "gruesse", "", "<p>Der <b>Dom</b></p>", "html"
                ),
                TranslationDoc(
                    "en",
                    "Greetings from Cologne",
                    "greetings",
                    "A city",
                    "The [cathedral](https://x.example) is *tall*",
                    "markdown",
                ),
            ),
            None,
            None,
            ("travel",),
            T0,
            T0,
            T0,
            3,
        )
        with trio.fail_after(20):
            async with store.transaction() as tx:
                await projector.apply(tx, [node])
            found = await reader.search(
                store, SearchRequest(TENANT, type="content", query=parse_query("koln"))
            )
            assert [(i["id"], i["locale"]) for i in found.items] == [(node_id, "de")]
            assert found.items[0]["highlights"]["title"] == "Grüße aus <mark>Köln</mark>"
            cathedral = await reader.search(
                store, SearchRequest(TENANT, type="content", query=parse_query("cathedral -https"))
            )
            assert [i["locale"] for i in cathedral.items] == ["en"]
            assert (
                cathedral.items[0]["highlights"]["snippet"] == "The <mark>cathedral</mark> is tall"
            )
            url = await reader.search(
                store, SearchRequest(TENANT, type="content", query=parse_query("example"))
            )
            assert url.items == []  # link targets are not text
            both = await reader.search(store, SearchRequest(TENANT, type="content", tag="travel"))
            assert both.total == 2
            assert both.facets["tags"] == {"travel": 2}
            assert both.facets["kind"] == {"post": 2}
            english = await reader.search(store, SearchRequest(TENANT, type="content", locale="en"))
            assert [i["locale"] for i in english.items] == ["en"]
