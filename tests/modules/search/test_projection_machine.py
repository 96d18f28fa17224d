"""The projection as a state machine, through the real module, on SQLite and on PostgreSQL.

Rules make random changes to products (fields, status, stock movements,
reservations) and content nodes (edits, lifecycle, deletion) of several
tenants, each producing the event its module would publish (the real
payload types, round-tripped through the codec). Delivery is a separate
rule: any pending event may go next (out of order), any delivered one may
come again (redeliveries and duplicates), all of them through
``SearchService.handle``, the module's subscription handler (inbox and rows
in one transaction, version guards).

Invariants after every step:

* the read models equal a model rebuilt from the newest delivered state of
  each aggregate: a product's fields from its newest ``product.*`` event,
  its stock from its newest event of any kind; a node from its newest event
  (gone after a deletion, never back); nothing else is listed;
* once every event is delivered, that is the latest state of every aggregate;
* searches (words, phrases, prefixes, exclusions, status filters) find
  exactly the ids a naive search over that model finds, with the same status
  facets, and never another tenant's rows.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test

from triotok.app import schemas_of
from triotok.modules.commerce._events import (
    InventoryAdjusted,
    InventoryReserved,
    ProductArchived,
    ProductCreated,
    ProductSnapshot,
    ProductUpdated,
    ReservedLine,
    StockLine,
)
from triotok.modules.content._model import (
    NodeArchived,
    NodeCreated,
    NodeDeleted,
    NodePublished,
    NodeRestored,
    NodeSnapshot,
    NodeUnpublished,
    NodeUpdated,
    TranslationSnapshot,
)
from triotok.modules.search import (
    SearchRequest,
    SearchService,
    matches,
    parse_query,
    plain_text,
    words,
)
from triotok.store import StoreHandle, StoreOwner
from triotok.testing import ActorStateMachine
from triotok.transport import Envelope, decode, encode

TENANTS = ("acme", "globex")
VOCABULARY = ("blue", "red", "mug", "cup", "tea", "pot", "crème", "brûlée", "glaze", "stone")
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)

text_words = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4).map(" ".join)
maybe_words = st.lists(st.sampled_from(VOCABULARY), max_size=5).map(" ".join)


@st.composite
def queries(draw: Any) -> str:
    """Query texts over the vocabulary: words, phrases, prefixes, exclusions (one positive)."""

    def clause(positive: bool) -> str:
        word = draw(st.sampled_from(VOCABULARY))
        shape = draw(st.sampled_from(("word", "phrase", "prefix")))
        if shape == "phrase":
            text = f'"{word} {draw(st.sampled_from(VOCABULARY))}"'
        elif shape == "prefix":
            text = word[: draw(st.integers(2, 3))] + "*"
        else:
            text = word.upper() if draw(st.booleans()) else word
        return text if positive else "-" + text

    parts = [clause(True)] + [clause(draw(st.booleans())) for _ in range(draw(st.integers(0, 2)))]
    return " ".join(parts)


# ---------------------------------------------------------------- the write side's model


@dataclass(frozen=True)
class Product:
    tenant: str
    id: str
    sku: str
    title: str
    description: str = ""
    price: int = 100
    status: str = "draft"
    attributes: dict[str, str | int | bool] = field(default_factory=dict)
    on_hand: int = 0
    reserved: int = 0
    version: int = 1

    def snapshot(self) -> ProductSnapshot:
        at = T0 + timedelta(seconds=self.version)
        return ProductSnapshot(
            uuid.UUID(self.id),
            self.sku,
            self.title,
            self.description,
            self.price,
            "EUR",
            self.status,
            dict(self.attributes),
            self.on_hand,
            self.reserved,
            T0,
            at,
            self.version,
        )

    def line(self, quantity: int) -> StockLine:
        return StockLine(uuid.UUID(self.id), quantity, self.on_hand, self.reserved, self.version)

    def reserved_line(self, quantity: int) -> ReservedLine:
        return ReservedLine(
            uuid.UUID(self.id),
            quantity,
            self.on_hand,
            self.reserved,
            self.version,
            self.price,
            "EUR",
        )

    def tokens(self) -> list[str]:
        values = [v for v in self.attributes.values() if isinstance(v, str)]
        return (
            words(self.title)
            + words(self.sku)
            + words(self.description)
            + [w for v in values for w in words(v)]
        )


@dataclass(frozen=True)
class Node:
    tenant: str
    id: str
    kind: str
    translations: tuple[tuple[str, str, str], ...]  # (locale, title, body)
    status: str = "draft"
    tags: tuple[str, ...] = ()
    version: int = 1

    def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(
            uuid.UUID(self.id),
            self.kind,
            self.status,
            tuple(
                TranslationSnapshot(loc, title, f"s-{self.id[:8]}-{loc}", "", body, "markdown")
                for loc, title, body in self.translations
            ),
            None,
            None,
            self.tags,
            T0,
            T0 + timedelta(seconds=self.version),
            T0 if self.status == "published" else None,
            self.version,
        )

    def tokens(self, locale: str) -> list[str]:
        [(_, title, body)] = [t for t in self.translations if t[0] == locale]
        return words(title) + words(plain_text(body))


def _envelope(tenant: str, payload: object) -> Envelope:
    # What the relay hands over: the event as it travels, encoded and decoded.
    return decode(encode(Envelope.new(payload, tenant_id=tenant)))


class ProjectionMachine(ActorStateMachine):
    store_url: str = ""
    system_options = {"intensity": 1000}
    # The store works in threads (and PostgreSQL through asyncio): never jump past it.
    autojump_threshold = 10.0
    step_limit_real = 120.0

    @initialize()
    async def start(self) -> None:
        self._tmp: Path | None = None
        url = self.store_url
        if not url:
            self._tmp = Path(tempfile.mkdtemp(prefix="triotok-search-"))
            url = f"sqlite:///{self._tmp / 'search.db'}"
        self.handle = StoreHandle()
        await self.system.spawn(StoreOwner, self.handle, url, schemas_of(), name="store")
        await self.handle.wait_open()
        self.service = SearchService(self.handle)
        # Each example has tenants of its own: a database shared by examples stays valid.
        suffix = uuid.uuid4().hex[:8]
        self.tenants = tuple(f"{t}-{suffix}" for t in TENANTS)
        self.products: dict[str, Product] = {}
        self.nodes: dict[str, Node | None] = {}  # None: deleted
        self.pending: list[Envelope] = []
        self.delivered: list[Envelope] = []
        self.skus = 0

    def teardown(self) -> None:
        super().teardown()
        if getattr(self, "_tmp", None) is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _emit(self, tenant: str, payload: object) -> None:
        self.pending.append(_envelope(tenant, payload))

    # ------------------------------------------------------------------ products

    @rule(
        tenant=st.sampled_from(range(len(TENANTS))),
        title=text_words,
        description=maybe_words,
        color=st.sampled_from(("blue", "red", None)),
    )
    def create_product(self, tenant: int, title: str, description: str, color: str | None) -> None:
        self.skus += 1
        attributes: dict[str, str | int | bool] = {} if color is None else {"color": color}
        p = Product(
            self.tenants[tenant],
            str(uuid.uuid4()),
            f"SKU-{self.skus}",
            title,
            description,
            100 * self.skus,
            attributes=attributes,
        )
        self.products[p.id] = p
        self._emit(p.tenant, ProductCreated(p.snapshot()))

    def _pick_product(self, data: st.DataObject) -> Product:
        return self.products[data.draw(st.sampled_from(sorted(self.products)))]

    @precondition(lambda self: self.products)
    @rule(
        data=st.data(),
        title=st.none() | text_words,
        status=st.sampled_from((None, "draft", "active")),
        price=st.none() | st.integers(0, 20_000),
    )
    def update_product(
        self, data: st.DataObject, title: str | None, status: str | None, price: int | None
    ) -> None:
        p = self._pick_product(data)
        changes: dict[str, Any] = {"version": p.version + 1}
        if title is not None:
            changes["title"] = title
        if status is not None:
            changes["status"] = status
        if price is not None:
            changes["price"] = price
        p = replace(p, **changes)
        self.products[p.id] = p
        self._emit(p.tenant, ProductUpdated(p.snapshot(), tuple(sorted(changes))))

    @precondition(lambda self: self.products)
    @rule(data=st.data())
    def archive_product(self, data: st.DataObject) -> None:
        p = replace(self._pick_product(data), status="archived")
        p = replace(p, version=p.version + 1)
        self.products[p.id] = p
        self._emit(p.tenant, ProductArchived(p.snapshot()))

    @precondition(lambda self: self.products)
    @rule(data=st.data(), delta=st.integers(-5, 20))
    def adjust_stock(self, data: st.DataObject, delta: int) -> None:
        p = self._pick_product(data)
        delta = max(delta, p.reserved - p.on_hand)
        p = replace(p, on_hand=p.on_hand + delta, version=p.version + 1)
        self.products[p.id] = p
        self._emit(p.tenant, InventoryAdjusted(p.line(delta), delta, "count"))

    @precondition(lambda self: self.products)
    @rule(data=st.data(), quantity=st.integers(1, 3))
    def reserve(self, data: st.DataObject, quantity: int) -> None:
        # An order of two items of one tenant when it has two products: one event, two lines.
        first = self._pick_product(data)
        same = [q for q in self.products.values() if q.tenant == first.tenant and q.id != first.id]
        chosen = [first, *same[:1]]
        lines = []
        for p in chosen:
            if p.on_hand - p.reserved < quantity:
                return  # rejected: inventory.rejected changes nothing indexed
        for p in chosen:
            p = replace(p, reserved=p.reserved + quantity, version=p.version + 1)
            self.products[p.id] = p
            lines.append(p.reserved_line(quantity))
        self._emit(first.tenant, InventoryReserved(str(uuid.uuid4()), tuple(lines)))

    # ------------------------------------------------------------------ content

    @rule(
        tenant=st.sampled_from(range(len(TENANTS))),
        title=text_words,
        body=maybe_words,
        locales=st.sampled_from((("en",), ("de",), ("de", "en"))),
        tags=st.lists(st.sampled_from(("news", "tea")), max_size=2, unique=True),
    )
    def create_node(
        self, tenant: int, title: str, body: str, locales: tuple[str, ...], tags: list[str]
    ) -> None:
        node_id = str(uuid.uuid4())
        translations = tuple((loc, f"{title} {loc}", f"**{body}**") for loc in locales)
        n = Node(self.tenants[tenant], node_id, "post", translations, tags=tuple(sorted(tags)))
        self.nodes[node_id] = n
        self._emit(n.tenant, NodeCreated(n.snapshot()))

    def _live_nodes(self) -> list[str]:
        return sorted(k for k, n in self.nodes.items() if n is not None)

    @precondition(lambda self: self._live_nodes())
    @rule(data=st.data(), title=text_words)
    def update_node(self, data: st.DataObject, title: str) -> None:
        n = self.nodes[data.draw(st.sampled_from(self._live_nodes()))]
        assert n is not None
        translations = tuple((loc, title, body) for loc, _, body in n.translations)
        n = replace(n, translations=translations, version=n.version + 1)
        self.nodes[n.id] = n
        self._emit(n.tenant, NodeUpdated(n.snapshot(), ("translations",)))

    @precondition(lambda self: self._live_nodes())
    @rule(data=st.data())
    def transition_node(self, data: st.DataObject) -> None:
        n = self.nodes[data.draw(st.sampled_from(self._live_nodes()))]
        assert n is not None
        moves = {
            "draft": (("published", NodePublished),),
            "published": (("draft", NodeUnpublished), ("archived", NodeArchived)),
            "archived": (("draft", NodeRestored),),
        }
        status, event = data.draw(st.sampled_from(moves[n.status]))
        n = replace(n, status=status, version=n.version + 1)
        self.nodes[n.id] = n
        self._emit(n.tenant, event(n.snapshot()))

    @precondition(lambda self: self._live_nodes())
    @rule(data=st.data())
    def delete_node(self, data: st.DataObject) -> None:
        n = self.nodes[data.draw(st.sampled_from(self._live_nodes()))]
        assert n is not None
        self.nodes[n.id] = None
        self._emit(n.tenant, NodeDeleted(uuid.UUID(n.id), n.version + 1))

    # ------------------------------------------------------------------ delivery

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    async def deliver_one(self, data: st.DataObject) -> None:
        envelope = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        await self.service.handle(envelope)
        self.delivered.append(envelope)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    async def redeliver(self, data: st.DataObject) -> None:
        envelope = data.draw(st.sampled_from(self.delivered))
        await self.service.handle(envelope)  # the inbox makes it a no-op

    @precondition(lambda self: self.pending)
    @rule(reverse=st.booleans())
    async def deliver_all(self, reverse: bool) -> None:
        batch, self.pending = self.pending, []
        for envelope in reversed(batch) if reverse else batch:
            await self.service.handle(envelope)
            self.delivered.append(envelope)

    # ------------------------------------------------------------------ the expected index

    def _expected_products(self, tenant: str) -> dict[str, dict[str, Any]]:
        fields: dict[str, Any] = {}
        stock: dict[str, tuple[int, int, int]] = {}
        for envelope in self.delivered:
            if envelope.tenant_id != tenant:
                continue
            payload = envelope.payload
            if envelope.event_type.startswith("product."):
                snap = payload.product
                key = str(snap.product_id)
                if key not in fields or snap.version > fields[key].version:
                    fields[key] = snap
                lines = [(key, snap.on_hand, snap.reserved, snap.version)]
            elif envelope.event_type.startswith("inventory."):
                found = getattr(payload, "lines", None) or (payload.line,)
                lines = [(str(x.product_id), x.on_hand, x.reserved, x.version) for x in found]
            else:
                continue
            for key, on_hand, reserved, version in lines:
                if key not in stock or version > stock[key][2]:
                    stock[key] = (on_hand, reserved, version)
        expected = {}
        for key, snap in fields.items():
            on_hand, reserved, stock_version = stock[key]
            expected[key] = {
                "sku": snap.sku,
                "title": snap.title,
                "description": snap.description,
                "price": snap.price,
                "status": snap.status,
                "attributes": dict(snap.attributes),
                "on_hand": on_hand,
                "reserved": reserved,
                "available": on_hand - reserved,
                "version": max(snap.version, stock_version),
            }
        return expected

    def _expected_nodes(self, tenant: str) -> dict[str, Any]:
        newest: dict[str, Envelope] = {}
        for envelope in self.delivered:
            if envelope.tenant_id != tenant or not envelope.event_type.startswith("content."):
                continue
            payload = envelope.payload
            key = str(
                payload.node_id
                if envelope.event_type == "content.node.deleted"
                else payload.node.node_id
            )
            version = (
                payload.version
                if envelope.event_type == "content.node.deleted"
                else payload.node.version
            )
            current = newest.get(key)
            if current is None or version > _version(current):
                newest[key] = envelope
        return {
            key: e.payload.node
            for key, e in newest.items()
            if e.event_type != "content.node.deleted"
        }

    @invariant()
    async def index_equals_the_newest_delivered_state(self) -> None:
        if not hasattr(self, "service"):
            return
        store = self.handle.store
        reader = self.service.reader()
        for tenant in self.tenants:
            listed = await reader.list_products(store, tenant, limit=100)
            keys = (
                "sku",
                "title",
                "description",
                "price",
                "status",
                "attributes",
                "on_hand",
                "reserved",
                "available",
                "version",
            )
            got = {i["id"]: {k: i[k] for k in keys} for i in listed.items}
            assert got == self._expected_products(tenant)
            nodes = await reader.list_nodes(store, tenant, limit=100)
            got_nodes = {d["id"]: d for d in map(json.loads, nodes.documents)}
            expected = self._expected_nodes(tenant)
            assert set(got_nodes) == set(expected)
            for key, snap in expected.items():
                doc = got_nodes[key]
                assert (doc["status"], doc["version"], doc["tags"]) == (
                    snap.status,
                    snap.version,
                    list(snap.tags),
                )
                assert {loc: t["title"] for loc, t in doc["translations"].items()} == {
                    t.locale: t.title for t in snap.translations
                }

    @invariant()
    def everything_delivered_is_the_latest_state(self) -> None:
        if not hasattr(self, "service") or self.pending:
            return
        for tenant in self.tenants:
            latest = {p.id: p.version for p in self.products.values() if p.tenant == tenant}
            assert {k: v["version"] for k, v in self._expected_products(tenant).items()} == latest
            alive = {k for k, n in self.nodes.items() if n is not None and n.tenant == tenant}
            assert set(self._expected_nodes(tenant)) == alive

    # ------------------------------------------------------------------ search

    @rule(
        tenant=st.sampled_from(range(len(TENANTS))),
        text=queries(),
        status=st.sampled_from((None, "draft", "active", "archived")),
    )
    async def search_products(self, tenant: int, text: str, status: str | None) -> None:
        query = parse_query(text)
        assert query is not None
        tenant_id = self.tenants[tenant]
        expected = set()
        statuses: dict[str, int] = {}
        for key, fields in self._expected_products(tenant_id).items():
            model = Product(
                tenant_id,
                key,
                fields["sku"],
                fields["title"],
                fields["description"],
                attributes=fields["attributes"],
            )
            if matches(query, model.tokens()) and status in (None, fields["status"]):
                expected.add(key)
                statuses[fields["status"]] = statuses.get(fields["status"], 0) + 1
        request = SearchRequest(tenant_id, query=query, status=status, limit=100)
        result = await self.service.reader().search(self.handle.store, request)
        assert {i["id"] for i in result.items} == expected, text
        assert result.total == len(expected)
        assert result.facets["status"] == statuses

    @rule(
        tenant=st.sampled_from(range(len(TENANTS))),
        text=queries(),
        locale=st.sampled_from((None, "en", "de")),
    )
    async def search_content(self, tenant: int, text: str, locale: str | None) -> None:
        query = parse_query(text)
        assert query is not None
        tenant_id = self.tenants[tenant]
        expected = set()
        for key, snap in self._expected_nodes(tenant_id).items():
            for t in snap.translations:
                tokens = words(t.title) + words(plain_text(t.body))
                if locale in (None, t.locale) and matches(query, tokens):
                    expected.add((key, t.locale))
        request = SearchRequest(tenant_id, type="content", query=query, locale=locale, limit=100)
        result = await self.service.reader().search(self.handle.store, request)
        assert {(i["id"], i["locale"]) for i in result.items} == expected, text
        assert result.total == len(expected)


def _version(envelope: Envelope) -> int:
    payload: Any = envelope.payload
    return int(
        payload.version if envelope.event_type == "content.node.deleted" else payload.node.version
    )


SETTINGS = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_projection_on_sqlite() -> None:
    run_state_machine_as_test(ProjectionMachine, settings=SETTINGS)


@pytest.mark.postgres
def test_the_projection_on_postgresql(pg_url: str) -> None:
    machine = type("PostgresProjectionMachine", (ProjectionMachine,), {"store_url": pg_url})
    run_state_machine_as_test(machine, settings=SETTINGS)
