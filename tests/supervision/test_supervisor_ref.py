"""A supervisor's ref: its own target (no mailbox), a frozen statistics snapshot, no messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from trio.testing import MockClock

from triotok import Actor
from triotok.actors import (
    ActorError,
    ActorRef,
    ActorStatistics,
    DeadLetterReason,
    InvalidConfig,
)
from triotok.supervision import (
    ChildSpec,
    Strategy,
    SupervisorRef,
    SupervisorSpec,
    SupervisorStatistics,
)
from triotok.testing import open_test_system


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


async def test_a_supervisor_refs_statistics_are_a_frozen_snapshot(
    autojump_clock: MockClock,
) -> None:
    async with open_test_system() as system:
        spec = SupervisorSpec("sup", [ChildSpec("a", Echo)], strategy=Strategy.ONE_FOR_ALL)
        sup = await system.spawn_supervisor(spec)
        await sup.start_child(ChildSpec("b", Echo))
        stats = sup.statistics()
        assert stats == SupervisorStatistics(
            path="/test/sup",
            state="running",
            strategy="one_for_all",
            intensity=3,
            period=5.0,
            restarts=0,
            restarts_in_period=0,
            children=2,
            active=2,
            last_error=None,
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.children = 0  # type: ignore[misc]
        assert stats.as_dict()["strategy"] == "one_for_all"
        await sup.terminate_child("b")
        assert stats.children == 2  # a snapshot: later changes do not show in it
        assert sup.statistics().children == 1
        await system.restart("/test/sup")
        assert sup.statistics().restarts == 1
        # The actor ref beside it returns its own frozen snapshot.
        child = system.ref("/test/sup/a")
        assert isinstance(child, ActorRef)
        assert isinstance(child.statistics(), ActorStatistics)
        with pytest.raises(dataclasses.FrozenInstanceError):
            child.statistics().processed = 1  # type: ignore[misc]


async def test_a_supervisor_ref_is_not_an_actor_cell_in_disguise(
    autojump_clock: MockClock,
) -> None:
    async with open_test_system() as system:
        sup = await system.spawn_supervisor(SupervisorSpec("sup"))
        assert system.ref("/test/sup") == sup
        assert isinstance(sup, SupervisorRef)
        assert not isinstance(sup, ActorRef)
        assert repr(sup) == "<SupervisorRef /test/sup>"
        assert (sup.path, sup.name) == ("/test/sup", "sup")
        node = system.runtime.lookup("/test/sup")
        for mailbox_part in ("queue", "capacity", "accepting", "enqueue_full"):
            assert not hasattr(node, mailbox_part)
        assert isinstance(system.root.ref, SupervisorRef)


async def test_messages_to_a_supervisor_are_dead_letters_and_asks_fail(
    autojump_clock: MockClock,
) -> None:
    async with open_test_system() as system:
        sup = await system.spawn_supervisor(SupervisorSpec("sup"))
        sup.tell("told")
        await sup.send("sent")
        letters = system.dead_letters.recent(2)
        assert [(d.message, d.recipient, d.reason) for d in letters] == [
            ("told", "/test/sup", DeadLetterReason.NO_RECIPIENT),
            ("sent", "/test/sup", DeadLetterReason.NO_RECIPIENT),
        ]
        with pytest.raises(ActorError, match="takes no messages"):
            await sup.ask("anything")


async def test_stopping_a_supervisor_ref_stops_its_subtree(autojump_clock: MockClock) -> None:
    async with open_test_system() as system:
        sup = await system.spawn_supervisor(SupervisorSpec("sup", [ChildSpec("a", Echo)]))
        child = system.ref("/test/sup/a")
        await sup.stop()
        assert sup.statistics().state == "stopped"
        assert isinstance(child, ActorRef)
        assert child.statistics().state == "stopped"
        await sup.stop()  # stopping again does nothing
        await system.root.ref.stop()  # nor does stopping the root through its ref
        assert system.root.ref.statistics().state == "running"


async def test_spawn_refuses_a_supervisor_spec(autojump_clock: MockClock) -> None:
    async with open_test_system() as system:
        with pytest.raises(InvalidConfig, match="spawn_supervisor"):
            await system.spawn(SupervisorSpec("sup"))  # type: ignore[arg-type]  # run-time check
