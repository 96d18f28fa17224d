"""Entity writes on a real store (SQLite file and PostgreSQL): round trips and conflicts.

Structural, not timed: each command's calls into the database are counted
with ``StoreStatistics.round_trips`` (jobs on the SQLite threads, crossings
into asyncio on PostgreSQL). Only the store and the two entity regions run
(no relay, no feed), so the counts are exact. A create is one round trip:
its entity does not load (the row cannot exist yet) and its unit of work
(row, translations, tags, event, audit) is sent at once. If the write path
regresses to a statement per round trip, these numbers say so.

The conflicts that the unique indexes now decide alone are still told apart:
a taken slug or sku answers ``SlugTaken``/``SkuTaken`` naming the holder, a
create over an existing row answers ``NodeExists``/``ProductExists``, and
any other unique violation is not reported as a taken slug.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from tests.store.conftest import pg_cluster, pg_url, store_url  # noqa: F401  # fixtures
from triotok._exceptions import EntityConflict
from triotok.app import schemas_of
from triotok.modules.commerce import (
    AdjustInventory,
    CreateProduct,
    GetProduct,
    ProductEntity,
    ProductExists,
    ProductRepository,
    SkuTaken,
    UpdateProduct,
)
from triotok.modules.content import (
    Command,
    ContentRepository,
    CreateNode,
    GetNode,
    NodeEntity,
    SlugTaken,
    TransitionNode,
    Translation,
    UpdateNode,
    Who,
)
from triotok.modules.content._entity import NodeExists
from triotok.store import Store, StoreHandle, StoreOwner
from triotok.supervision import Entities, EntitiesRef
from triotok.testing import open_test_system

TENANT = "acme"
WHO = Who("key:test")


@dataclass
class Regions:
    store: Store
    nodes: EntitiesRef
    products: EntitiesRef

    async def trips(self, region: EntitiesRef, key: str, command: Any) -> tuple[Any, int]:
        """The reply to ``command`` and the round trips it cost."""
        before = self.store.statistics().round_trips
        reply = await region.ask((TENANT, key), command, timeout=30)
        return reply, self.store.statistics().round_trips - before

    async def outbox(self) -> list[str]:
        rows = await self.store.fetch("SELECT event_type FROM outbox ORDER BY id")
        return [str(r["event_type"]) for r in rows]

    async def audit(self) -> int:
        return int(await self.store.fetchval("SELECT count(*) FROM audit_log"))


@pytest.fixture
async def regions(store_url: str) -> AsyncIterator[Regions]:  # noqa: F811  # the fixture above
    with trio.fail_after(60):
        async with open_test_system() as system:
            handle = StoreHandle()
            await system.spawn(StoreOwner, handle, store_url, schemas_of(), name="store")
            store = await handle.wait_open()
            content, commerce = ContentRepository(), ProductRepository()
            nodes = await system.system.spawn_entities(
                Entities("nodes", factory=lambda key: NodeEntity(key, handle, content))
            )
            products = await system.system.spawn_entities(
                Entities("products", factory=lambda key: ProductEntity(key, handle, commerce))
            )
            yield Regions(store, nodes, products)


def _create(slug: str, *, locale: str = "en", tags: tuple[str, ...] = ("a", "b")) -> CreateNode:
    text = Translation(locale, f"Title {slug}", slug, body="# Body")
    return CreateNode("page", (text,), WHO, tags=tags)


# ------------------------------------------------------------------ round trips


async def test_content_writes_are_one_round_trip_each(regions: Regions) -> None:
    node_id = str(uuid.uuid4())
    node, trips = await regions.trips(regions.nodes, node_id, _create("about"))
    assert node.version == 1
    assert trips == 1  # no load, and BEGIN .. node, translation, tags, event, audit .. COMMIT
    _, trips = await regions.trips(
        regions.nodes, node_id, TransitionNode(Command.PUBLISH, WHO, expected_version=1)
    )
    assert trips == 1
    _, trips = await regions.trips(
        regions.nodes, node_id, UpdateNode({"tags": ("c",)}, WHO, expected_version=2)
    )
    assert trips == 1
    _, trips = await regions.trips(regions.nodes, node_id, GetNode())
    assert trips == 0
    assert await regions.outbox() == [
        "content.node.created",
        "content.node.published",
        "content.node.updated",
    ]
    assert await regions.audit() == 3


async def test_commerce_writes_round_trips(regions: Regions) -> None:
    product_id = str(uuid.uuid4())
    command = CreateProduct("SKU-1", "Mug", 1200, "EUR", WHO)
    product, trips = await regions.trips(regions.products, product_id, command)
    assert product.version == 1
    assert trips == 1
    _, trips = await regions.trips(
        regions.products, product_id, UpdateProduct({"title": "Cup"}, WHO, expected_version=1)
    )
    assert trips == 1
    adjusted, trips = await regions.trips(
        regions.products, product_id, AdjustInventory(5, "delivery", WHO)
    )
    assert adjusted.on_hand == 5
    # The update answers the new stock, which the event carries: then event, audit, COMMIT.
    assert trips == 2
    assert await regions.outbox() == ["product.created", "product.updated", "inventory.adjusted"]
    assert await regions.audit() == 3


# ------------------------------------------------------------------ conflicts: content


async def test_a_taken_slug_names_the_node_that_holds_it(regions: Regions) -> None:
    holder = str(uuid.uuid4())
    await regions.nodes.ask((TENANT, holder), _create("about"))
    other = str(uuid.uuid4())
    two = (Translation("de", "Über", "ueber"), Translation("en", "About", "about"))
    with pytest.raises(SlugTaken, match=f"'about' is taken in locale en by node {holder}"):
        await regions.nodes.ask((TENANT, other), CreateNode("page", two, WHO))
    # Nothing of the refused create was written, and the entity knows there is no node.
    assert await regions.store.fetchval("SELECT count(*) FROM content_nodes") == 1
    assert await regions.outbox() == ["content.node.created"]
    with pytest.raises(LookupError):
        await regions.nodes.ask((TENANT, other), GetNode())
    # The same slug in another locale, or with another tenant, is free.
    await regions.nodes.ask((TENANT, other), _create("about", locale="de"))
    await regions.nodes.ask(("beta", str(uuid.uuid4())), _create("about"))


async def test_renaming_to_a_taken_slug_changes_nothing(regions: Regions) -> None:
    holder, renamed = str(uuid.uuid4()), str(uuid.uuid4())
    await regions.nodes.ask((TENANT, holder), _create("about"))
    await regions.nodes.ask((TENANT, renamed), _create("contact"))
    taken = (Translation("en", "Contact", "about"),)
    with pytest.raises(SlugTaken, match=f"by node {holder}"):
        await regions.nodes.ask(
            (TENANT, renamed), UpdateNode({"translations": taken}, WHO, expected_version=1)
        )
    node = await regions.nodes.ask((TENANT, renamed), GetNode())
    assert (node.version, node.translations[0].slug) == (1, "contact")
    stored = await regions.store.fetchval(
        "SELECT slug FROM content_translations WHERE node_id = $1", renamed
    )
    assert stored == "contact"
    assert await regions.outbox() == ["content.node.created", "content.node.created"]


async def test_creating_over_an_existing_row_answers_node_exists(regions: Regions) -> None:
    node_id = str(uuid.uuid4())
    first = await regions.nodes.ask((TENANT, node_id), _create("about"))
    await regions.nodes.passivate((TENANT, node_id))
    # The new activation does not load for a create: the primary key refuses it.
    with pytest.raises(NodeExists):
        await regions.nodes.ask((TENANT, node_id), _create("other"))
    assert await regions.nodes.ask((TENANT, node_id), GetNode()) == first
    assert await regions.outbox() == ["content.node.created"]


async def test_another_unique_violation_is_not_a_taken_slug(regions: Regions) -> None:
    # The same tag twice violates content_tags' key: a conflict the region
    # retries once, then answers as such, never as a taken slug.
    node_id = str(uuid.uuid4())
    with pytest.raises(EntityConflict) as raised:
        await regions.nodes.ask((TENANT, node_id), _create("about", tags=("a", "a")))
    assert not isinstance(raised.value, SlugTaken)
    assert raised.value.cause.violates("content_tags", "tenant_id", "node_id", "tag")
    # Named by its key, not by the database's text (it reaches HTTP clients).
    assert str(raised.value).endswith("the key (tenant_id, node_id, tag) of content_tags is taken")
    assert "constraint" not in str(raised.value).lower()
    assert await regions.store.fetchval("SELECT count(*) FROM content_nodes") == 0


# ------------------------------------------------------------------ conflicts: commerce


async def test_a_taken_sku_names_the_product_that_holds_it(regions: Regions) -> None:
    holder, other = str(uuid.uuid4()), str(uuid.uuid4())
    await regions.products.ask((TENANT, holder), CreateProduct("SKU-1", "Mug", 100, "EUR", WHO))
    with pytest.raises(SkuTaken, match=f"taken by product {holder}") as raised:
        await regions.products.ask((TENANT, other), CreateProduct("SKU-1", "Cup", 90, "EUR", WHO))
    assert raised.value.extra == {"sku": "SKU-1"}
    await regions.products.ask((TENANT, other), CreateProduct("SKU-2", "Cup", 90, "EUR", WHO))
    with pytest.raises(SkuTaken, match=f"taken by product {holder}"):
        await regions.products.ask(
            (TENANT, other), UpdateProduct({"sku": "SKU-1"}, WHO, expected_version=1)
        )
    product = await regions.products.ask((TENANT, other), GetProduct())
    assert (product.sku, product.version) == ("SKU-2", 1)
    assert await regions.outbox() == ["product.created", "product.created"]


async def test_creating_over_an_existing_product_answers_product_exists(
    regions: Regions,
) -> None:
    product_id = str(uuid.uuid4())
    command = CreateProduct("SKU-1", "Mug", 100, "EUR", WHO)
    first = await regions.products.ask((TENANT, product_id), command)
    await regions.products.passivate((TENANT, product_id))
    with pytest.raises(ProductExists):
        await regions.products.ask((TENANT, product_id), CreateProduct("SKU-9", "X", 1, "EUR", WHO))
    assert await regions.products.ask((TENANT, product_id), GetProduct()) == first
