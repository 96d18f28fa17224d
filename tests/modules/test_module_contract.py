"""A module from outside the platform: one folder's worth of declarations, nothing else.

``NOTES`` below stands for a third party's module (or a plugin's): one table,
one permission pair, two routes, one actor and one subscription. Composing it
with the built-in modules is all it takes: nothing in ``src/triotok`` names
it. The test proves each declaration takes effect on a real server: the
migration is applied and tracked under the module's name, the routes are
served, documented in ``/openapi.json`` and guarded by the module's
permissions, the actor runs in the tree at ``/app/modules/notes``, and the
events its route writes reach its subscription through the outbox relay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import msgspec
import pytest
import trio

from tests.http.conftest import Server, ServerFactory
from triotok import Actor
from triotok._exceptions import InvalidConfig
from triotok.app import MODULES
from triotok.http import Call, Reply, Route
from triotok.modules import (
    Grant,
    HealthCheck,
    HealthReport,
    Module,
    ModuleContext,
    Permission,
    RoleTable,
    Subscription,
)
from triotok.store import Migration, Wake
from triotok.supervision import ChildSpec
from triotok.transport import Envelope, event

# ---------------------------------------------------------------- the module


@event("test.note.created")
@dataclass(frozen=True, slots=True)
class NoteCreated:
    note_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Seen:
    """Counter message: an event was handled."""

    note_id: str


@dataclass(frozen=True, slots=True)
class HowMany:
    """Counter message: how many notes were seen."""


class Counter(Actor):
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Seen):
            self.seen.append(message.note_id)
            return None
        if isinstance(message, HowMany):
            return len(self.seen)
        raise TypeError(message)


async def create_note(call: Call) -> Reply:
    assert call.tenant is not None
    note_id = uuid.uuid4().hex
    async with call.services.store.store.transaction() as tx:
        await tx.execute(
            "INSERT INTO notes (id, tenant_id, body) VALUES ($1, $2, $3)",
            note_id,
            call.tenant.id,
            call.body.body,
        )
        await tx.publish(
            Envelope.new(NoteCreated(note_id, call.body.body), tenant_id=call.tenant.id)
        )
    return Reply(Note(id=note_id, body=call.body.body), 201)


async def list_notes(call: Call) -> dict[str, Any]:
    assert call.tenant is not None
    rows = await call.services.store.store.fetch(
        "SELECT id, body FROM notes WHERE tenant_id = $1 ORDER BY id", call.tenant.id
    )
    return {"items": [{"id": r["id"], "body": r["body"]} for r in rows]}


class NoteRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(max_length=200)]

    EXAMPLE: ClassVar[dict[str, Any]] = {"body": "buy milk"}


class Note(msgspec.Struct, frozen=True):
    id: str
    body: str

    EXAMPLE: ClassVar[dict[str, Any]] = {"id": "0123abcd", "body": "buy milk"}


class NoteList(msgspec.Struct, frozen=True):
    items: list[Note]

    EXAMPLE: ClassVar[dict[str, Any]] = {"items": [Note.EXAMPLE]}


def _routes() -> tuple[Route, ...]:
    return (
        Route(
            "POST",
            "/api/notes",
            create_note,
            "Write a note",
            "notes",
            Permission("notes", "create"),
            operation_id="createNote",
            status=201,
            body=NoteRequest,
            response=Note,
        ),
        Route(
            "GET",
            "/api/notes",
            list_notes,
            "The caller's tenant's notes",
            "notes",
            Permission("notes", "read"),
            operation_id="listNotes",
            response=NoteList,
        ),
    )


def _on_note(ctx: ModuleContext) -> Any:
    async def handle(envelope: Envelope) -> None:
        await ctx.system.ref("/app/modules/notes/counter").ask(Seen(envelope.payload.note_id))

    return handle


async def _counter_health(ctx: ModuleContext) -> HealthReport:
    seen = await ctx.system.ref("/app/modules/notes/counter").ask(HowMany())
    return HealthReport("ok", {"seen": seen})


NOTES = Module(
    name="notes",
    migrations=(
        Migration(
            1,
            "notes",
            sqlite=("CREATE TABLE notes (id TEXT PRIMARY KEY, tenant_id TEXT, body TEXT)",),
            postgresql=("CREATE TABLE notes (id text PRIMARY KEY, tenant_id text, body text)",),
        ),
    ),
    permissions=(
        Grant(Permission("notes", "create"), ("editor", "admin")),
        Grant(Permission("notes", "read"), ("viewer", "editor", "admin")),
    ),
    routes=_routes,
    actors=lambda ctx: [ChildSpec("counter", Counter)],
    subscriptions=(Subscription("test.note.*", _on_note),),
    health=(HealthCheck("counter", _counter_health),),
)

# ---------------------------------------------------------------- the proof


async def _count(server: Server) -> int:
    counter = server.app.system.ref("/app/modules/notes/counter")
    count: int = await counter.ask(HowMany())
    return count


async def test_an_extra_module_works_end_to_end(make_server: ServerFactory) -> None:
    with trio.fail_after(30):
        async with make_server(modules=(*MODULES, NOTES)) as server:
            editor = await server.key("alpha", "editor")
            viewer = await server.key("alpha", "viewer")
            other = await server.key("beta", "editor")

            # Migrations: applied and tracked under the module's own name.
            assert server.app.context.store.store.schema_versions["notes"] == 1

            # Routes and permissions: the module's grants decide.
            created = await server.client.post(
                "/api/notes", json={"body": "hello"}, headers=server.auth(editor)
            )
            assert created.status_code == 201, created.text
            refused = await server.client.post(
                "/api/notes", json={"body": "no"}, headers=server.auth(viewer)
            )
            assert refused.status_code == 403
            assert refused.json()["code"] == "forbidden"
            listed = await server.client.get("/api/notes", headers=server.auth(viewer))
            assert [n["body"] for n in listed.json()["items"]] == ["hello"]
            # Tenant isolation holds for the module's route as for the platform's.
            theirs = await server.client.get("/api/notes", headers=server.auth(other))
            assert theirs.json()["items"] == []
            crossed = await server.client.get("/api/notes", headers=server.auth(other, "alpha"))
            assert crossed.status_code == 403

            # /openapi.json documents the routes.
            document = (await server.client.get("/openapi.json")).json()
            assert set(document["paths"]["/api/notes"]) == {"get", "post"}

            # Actors: the module's subtree is in the tree and counted by /ready.
            tree = server.app.system.tree(prefix="/app/modules/notes")
            assert {c["path"] for c in tree["children"]} == {
                "/app/modules/notes/counter",
                "/app/modules/notes/on-1",
            }
            assert "/app/modules/notes" in server.services.required
            assert (await server.client.get("/ready")).status_code == 200

            # Subscriptions: the event of the write reaches the module's handler.
            relay = server.app.system.ref("/app/transport/relay")
            while await _count(server) < 1:
                await relay.ask(Wake())
            assert await _count(server) == 1

            # Health: the module's declared check shows in /health.
            health = (await server.client.get("/health")).json()
            assert health["subsystems"]["notes.counter"] == {"status": "up", "seen": 1}


def test_a_composition_refuses_a_module_named_twice() -> None:
    from triotok.modules import check_modules

    with pytest.raises(InvalidConfig, match="given twice"):
        check_modules((*MODULES, NOTES, NOTES))
    with pytest.raises(InvalidConfig, match="taken"):
        check_modules((*MODULES, Module(name="other", path="tenants")))
    with pytest.raises(InvalidConfig, match="name"):
        Module(name="Not A Name")


def test_a_restricted_grant_allows_a_subset_unless_another_grant_allows_it_all() -> None:
    read = Permission("notes", "read")
    table = RoleTable(
        [
            Grant(read, ("viewer",)),
            Grant(read, ("shop", "viewer"), restricted=True),
            Grant(Permission("notes", "create"), ("shop",)),
        ]
    )
    assert table.allows("shop", read)
    assert table.restricted("shop", read)
    assert table.allows("viewer", read)
    assert not table.restricted("viewer", read)  # the unrestricted grant wins
    assert not table.restricted("shop", Permission("notes", "create"))
    assert not table.restricted("nobody", read)
    assert "notes:read" in table.permissions("shop")
