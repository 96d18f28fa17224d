"""A hypothesis state machine over live content node entities on a real SQLite store.

Random creates, edits, lifecycle commands (with right, stale and missing
versions), entity crashes, passivations and idle time, across a few nodes.
Invariants after every step:

* only legal transitions happen: each command is accepted exactly when the
  model's lifecycle allows it, and refused with the typed error otherwise;
* every accepted command left exactly one event in the outbox, of its type,
  and refused commands left none;
* the stored rows equal the model (status, version, tags, titles).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from triotok._exceptions import NotFound
from triotok.actors import ActorCrashed, UnknownMessage
from triotok.app import schemas_of
from triotok.modules.content import (
    TRANSITIONS,
    Command,
    ContentRepository,
    CreateNode,
    GetNode,
    InvalidTransition,
    NodeEntity,
    Status,
    TransitionNode,
    Translation,
    UpdateNode,
    VersionMismatch,
    Who,
)
from triotok.store import StoreHandle, StoreOwner
from triotok.supervision import Entities
from triotok.testing import ActorStateMachine

TENANT = "acme"
WHO = Who("key:test")
EVENT_OF = {
    Command.PUBLISH: "content.node.published",
    Command.UNPUBLISH: "content.node.unpublished",
    Command.ARCHIVE: "content.node.archived",
    Command.RESTORE: "content.node.restored",
    Command.DELETE: "content.node.deleted",
}


class NodeMachine(ActorStateMachine):
    system_options = {"intensity": 1000}
    # Entities wait for the SQLite thread, which trio counts as blocked: never jump
    # the clock past real work (the rules move time with advance()).
    autojump_threshold = 10.0
    nodes = Bundle("nodes")

    @initialize()
    async def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="triotok-content-"))
        self.handle = StoreHandle()
        url = f"sqlite:///{self._tmp / 'content.db'}"
        await self.system.spawn(StoreOwner, self.handle, url, schemas_of(), name="store")
        repository = ContentRepository()
        spec = Entities(
            "nodes",
            factory=lambda key: NodeEntity(key, self.handle, repository),
            idle=30.0,
            max_active=2,
            intensity=1000,
        )
        self.region = await self.system.system.spawn_entities(spec)
        # node id -> (status, version, tags); deleted nodes are removed
        self.model: dict[str, tuple[Status, int, tuple[str, ...]]] = {}
        self.expected_events: dict[str, list[str]] = {}

    async def _ask(self, node_id: str, command: Any) -> Any:
        return await self.region.ask((TENANT, node_id), command, timeout=30.0)

    @rule(target=nodes, tags=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True))
    async def create(self, tags: list[str]) -> str:
        node_id = str(uuid.uuid4())
        slug = f"n-{node_id[:8]}"
        command = CreateNode("page", (Translation("en", "T", slug),), WHO, tags=tuple(sorted(tags)))
        node = await self._ask(node_id, command)
        assert (node.status, node.version) == (Status.DRAFT, 1)
        self.model[node_id] = (Status.DRAFT, 1, tuple(sorted(tags)))
        self.expected_events[node_id] = ["content.node.created"]
        return node_id

    @rule(
        node_id=nodes,
        tags=st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
        stale=st.booleans(),
    )
    async def update(self, node_id: str, tags: list[str], stale: bool) -> None:
        known = self.model.get(node_id)
        expected = None if known is None else known[1] + (1 if stale else 0)
        command = UpdateNode({"tags": tuple(sorted(tags))}, WHO, expected)
        if known is None:
            with contextlib.suppress(NotFound):
                await self._ask(node_id, command)
                raise AssertionError("a deleted node accepted an update")
            return
        if stale:
            try:
                await self._ask(node_id, command)
            except VersionMismatch:
                return
            raise AssertionError("a stale version was accepted")
        node = await self._ask(node_id, command)
        self.model[node_id] = (known[0], known[1] + 1, tuple(sorted(tags)))
        self.expected_events[node_id].append("content.node.updated")
        assert node.version == known[1] + 1

    @rule(node_id=nodes, command=st.sampled_from(list(Command)))
    async def transition(self, node_id: str, command: Command) -> None:
        known = self.model.get(node_id)
        if known is None:
            try:
                await self._ask(node_id, TransitionNode(command, WHO))
            except NotFound:
                return
            raise AssertionError("a deleted node accepted a command")
        status, version, tags = known
        legal = (status, command) in TRANSITIONS
        refused: InvalidTransition | None = None
        try:
            node = await self._ask(node_id, TransitionNode(command, WHO, version))
        except InvalidTransition as error:
            refused = error
        if refused is not None:
            assert not legal, f"{command} refused in {status}"
            assert refused.extra["current"] == status.value
            return
        assert legal, f"{command} accepted in {status}"
        after = TRANSITIONS[status, command]
        self.expected_events[node_id].append(EVENT_OF[command])
        if after is Status.DELETED:
            assert node is None
            del self.model[node_id]
        else:
            assert (node.status, node.version) == (after, version + 1)
            self.model[node_id] = (after, version + 1, tags)

    @rule(node_id=nodes)
    async def crash(self, node_id: str) -> None:
        # An unknown message crashes the entity: the region restarts it, reloading its row.
        with pytest.raises(ActorCrashed) as crashed:
            await self._ask(node_id, object())
        assert isinstance(crashed.value.cause, UnknownMessage)

    @rule(node_id=nodes)
    async def passivate(self, node_id: str) -> None:
        await self.region.passivate((TENANT, node_id))

    @rule(seconds=st.sampled_from([1.0, 31.0]))
    async def wait(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @invariant()
    async def entities_answer_the_model(self) -> None:
        for node_id, (status, version, tags) in self.model.items():
            node = await self._ask(node_id, GetNode())
            assert (node.status, node.version, node.tags) == (status, version, tags)

    @invariant()
    async def stored_rows_equal_the_model(self) -> None:
        store = self.handle.store
        rows = await store.fetch("SELECT id, status, version FROM content_nodes")
        stored = {str(r["id"]): (str(r["status"]), int(r["version"])) for r in rows}
        assert stored == {k: (s.value, v) for k, (s, v, _) in self.model.items()}

    @invariant()
    async def one_event_per_accepted_command(self) -> None:
        rows = await self.handle.store.fetch("SELECT event_type, payload FROM outbox ORDER BY id")
        from triotok.transport import decode

        seen: dict[str, list[str]] = {}
        for row in rows:
            payload = decode(bytes(row["payload"])).payload
            node_id = getattr(payload, "node_id", None)
            if node_id is None:
                node_id = payload.node.node_id
            seen.setdefault(str(node_id), []).append(str(row["event_type"]))
        assert seen == self.expected_events

    def teardown(self) -> None:
        super().teardown()
        if hasattr(self, "_tmp"):
            shutil.rmtree(self._tmp, ignore_errors=True)


NodeMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestContentNodes = NodeMachine.TestCase
