"""The store owner and the outbox feed answer their typed messages and refuse anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from triotok import open_system
from triotok.actors import ActorCrashed, UnknownMessage
from triotok.app import schemas_of
from triotok.modules.tenants import TenantCreated
from triotok.store import GetPosition, OutboxFeed, Ping, StoreHandle, StoreOwner
from triotok.transport import Envelope, InMemoryTransport

TIMEOUT = 20


async def test_the_owner_answers_ping_and_the_feed_its_position(tmp_path: Path) -> None:
    async with open_system(name="app") as system:
        handle = StoreHandle()
        url = f"sqlite:///{tmp_path}/t.db"
        events = InMemoryTransport()
        delivered = trio.Event()

        async def on_event(envelope: Envelope) -> None:
            delivered.set()

        await events.subscribe("test", on_event)
        owner = await system.spawn(StoreOwner, handle, url, schemas_of(), name="store")
        feed = await system.spawn(OutboxFeed, handle, events, name="feed")
        with trio.fail_after(TIMEOUT):
            seconds = await owner.ask(Ping())
            assert isinstance(seconds, float)
            assert seconds >= 0
            assert await feed.ask(GetPosition()) == 0
            async with handle.store.transaction() as tx:
                await tx.publish(Envelope.new(TenantCreated(tenant_id="acme", name="Acme")))
            await delivered.wait()
            assert await feed.ask(GetPosition()) == 1


@pytest.mark.parametrize(
    ("actor", "stale", "expected"),
    [("store", "ping", (Ping,)), ("feed", "position", (GetPosition,))],
)
async def test_strings_and_other_types_are_refused(
    tmp_path: Path, actor: str, stale: str, expected: tuple[type, ...]
) -> None:
    async with open_system(name="app") as system:
        handle = StoreHandle()
        url = f"sqlite:///{tmp_path}/t.db"
        await system.spawn(StoreOwner, handle, url, schemas_of(), name="store")
        await system.spawn(OutboxFeed, handle, InMemoryTransport(), name="feed")
        ref = system.ref(f"/app/{actor}")
        with trio.fail_after(TIMEOUT):
            for message in (stale, GetPosition() if actor == "store" else Ping()):
                with pytest.raises(ActorCrashed) as caught:
                    await ref.ask(message)
                error = caught.value.cause
                assert isinstance(error, UnknownMessage)
                assert error.path == f"/app/{actor}"
                assert error.message == message
                assert error.expected == expected
                assert error.code == "unknown_message"
            assert await ref.ask(expected[0]()) is not None  # restarted, and answers again
