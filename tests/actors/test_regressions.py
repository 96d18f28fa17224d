"""Regressions found by the actor-system property tests.

Each test is the shrunk example from ``test_properties.py`` rewritten as a
deterministic scenario.
"""

from __future__ import annotations

from typing import Any

import trio

from triotok import Actor
from triotok.supervision import ChildSpec, SupervisorSpec
from triotok.testing import open_test_system


class Worker(Actor):
    async def receive(self, message: str) -> str:
        if message == "crash":
            raise ValueError("crash")
        if message == "slow":
            await trio.sleep(1.0)
        return message


async def test_stop_during_an_escalation_stops_for_good(autojump_clock: Any) -> None:
    spec = SupervisorSpec(
        "workers", [ChildSpec(n, Worker) for n in ("a", "b", "c")], intensity=1, period=5.0
    )
    async with open_test_system(intensity=100) as system:
        await system.spawn_supervisor(spec)
        a, b, c = (system.ref(f"/test/workers/{n}") for n in "abc")
        a.tell("crash")  # restart 1 of 1
        a.tell("slow")  # a is busy for a second...
        await system.settle()
        b.tell("crash")  # ...so the escalation (restart 2 > 1) waits for it
        await system.settle()
        assert c.statistics().state == "stopped"  # stopped for the restart, not for good
        c.tell("queued-1")
        c.tell("queued-2")

        await c.stop()

        stats = c.statistics()
        assert stats.mailbox_depth == 0, stats  # queued messages became dead letters
        letters = [d.message for d in system.dead_letters.recent() if d.recipient == c.path]
        assert letters == ["queued-1", "queued-2"]
        await system.advance(5.0)  # the escalation completes; the workers restart
        # A restarted supervisor starts exactly its spec (issue 10): "c" is back
        # as a new node, while the ref that was stopped stays stopped.
        names = [n["name"] for n in system.tree(prefix="/test/workers")["children"]]
        assert names == ["a", "b", "c"]
        assert c.statistics().state == "stopped"
        assert system.ref("/test/workers/c") != c
