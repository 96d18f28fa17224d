"""The test kit: deterministic actor systems and async hypothesis state machines.

::

    from triotok.testing import ActorStateMachine, open_test_system

- :func:`open_test_system` runs a real actor system and yields a
  :class:`TestSystem` with ``settle()`` (wait until nothing can happen without
  time passing) and ``advance(seconds)`` (move a ``MockClock`` timer by timer).
- :class:`ActorStateMachine` is a hypothesis ``RuleBasedStateMachine`` whose
  rules and invariants may be ``async def``, run against a live system.

See ``docs/tutorial/property-tests.md``.
"""

from ._stateful import ActorStateMachine as ActorStateMachine
from ._system import TestSystem as TestSystem
from ._system import open_test_system as open_test_system

__all__ = ("ActorStateMachine", "TestSystem", "open_test_system")
