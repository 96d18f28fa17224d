"""The bus actor takes one message, the typed :class:`Reconcile`; anything else is refused."""

from __future__ import annotations

import pytest
from trio.testing import MockClock

from triotok.actors import ActorCrashed, ActorRef, UnknownMessage
from triotok.testing import open_test_system
from triotok.transport._bus_actor import Reconcile

from .test_bus_support import Recorder, open_bus


async def test_reconcile_is_answered_and_strings_are_refused(autojump_clock: MockClock) -> None:
    async with open_test_system() as system, open_bus(system) as bus:
        recorder = await system.spawn(Recorder, [], name="recorder")
        await bus.subscribe("product.*", recorder)
        actor = system.ref("/test/bus")
        assert isinstance(actor, ActorRef)
        assert await actor.ask(Reconcile()) is None
        assert [s.pattern for s in bus.subscriptions()] == ["product.*"]
        with pytest.raises(ActorCrashed) as caught:
            await actor.ask("reconcile")  # the string of old
        assert isinstance(caught.value.cause, UnknownMessage)
        assert caught.value.cause.expected == (Reconcile,)
        await system.settle()
        assert await actor.ask(Reconcile()) is None  # restarted, and reconciles again
        assert [s.pattern for s in bus.subscriptions()] == ["product.*"]
