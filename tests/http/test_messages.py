"""Every control message of the application tree is a small frozen type, answered in place."""

from __future__ import annotations

import dataclasses

import pytest
import trio

from tests.http.conftest import Server
from triotok.actors import ActorCrashed, ActorRef, UnknownMessage
from triotok.http import GetPort
from triotok.store import GetPosition, GetStatistics, Ping, RelayStatistics, Wake
from triotok.transport._bus_actor import Reconcile


def _actor(server: Server, path: str) -> ActorRef:
    ref = server.app.system.ref(path)
    assert isinstance(ref, ActorRef)
    return ref


async def test_each_actor_answers_its_typed_message(server: Server) -> None:
    with trio.fail_after(10):
        assert await _actor(server, "/app/http").ask(GetPort()) == server.app.port
        assert await _actor(server, "/app/store").ask(Ping()) >= 0
        assert isinstance(await _actor(server, "/app/transport/feed").ask(GetPosition()), int)
        relay = _actor(server, "/app/transport/relay")
        assert await relay.ask(Wake()) is None
        assert isinstance(await relay.ask(GetStatistics()), RelayStatistics)
        assert await _actor(server, "/app/transport/bus").ask(Reconcile()) is None


@pytest.mark.parametrize("message", [GetPort(), Ping(), GetPosition(), Wake(), Reconcile()])
def test_messages_are_small_frozen_values(message: object) -> None:
    assert dataclasses.is_dataclass(message)
    assert not hasattr(message, "__dict__")  # slots
    assert message == type(message)()
    # CPython 3.11 reports a frozen, slotted, field-less dataclass's refusal as TypeError.
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        message.extra = 1  # type: ignore[attr-defined]


async def test_the_server_refuses_the_old_string_and_comes_back_on_its_port(
    server: Server,
) -> None:
    http = _actor(server, "/app/http")
    with trio.fail_after(10):
        with pytest.raises(ActorCrashed) as caught:
            await http.ask("port")
        assert isinstance(caught.value.cause, UnknownMessage)
        assert caught.value.cause.expected == (GetPort,)
        assert await http.ask(GetPort()) == server.app.port  # restarted on the same port
        assert (await server.client.get("/live")).status_code == 200
