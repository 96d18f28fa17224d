"""The first actor system of a process moves what then lives out of the collector's way."""

from __future__ import annotations

import gc

from triotok import open_system


async def test_objects_alive_at_the_first_start_are_frozen_and_later_garbage_is_not() -> None:
    async with open_system(name="first"):
        pass
    frozen = gc.get_freeze_count()
    # Modules, classes, configuration: tens of thousands in a test process.
    assert frozen > 10_000

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    Cycle()  # garbage made after the start is collected as usual ...
    assert gc.collect() >= 1
    async with open_system(name="second"):
        pass
    # ... and a later system freezes nothing more (once per process).
    assert gc.get_freeze_count() == frozen
