"""The test kit: deterministic actor systems and async hypothesis state machines.

::

    from triotok.testing import ActorStateMachine, open_test_system

- :func:`open_test_system` runs a real actor system and yields a
  :class:`TestSystem` with ``settle()`` (wait until nothing can happen without
  time passing) and ``advance(seconds)`` (move a ``MockClock`` timer by timer).
- :class:`ActorStateMachine` is a hypothesis ``RuleBasedStateMachine`` whose
  rules and invariants may be ``async def``, run against a live system.
- :func:`open_plugin_harness` runs a plugin on a real platform (SQLite, no
  HTTP), enabled and switched on, and calls into it as the platform does.
- :class:`PostgresCluster` starts a throwaway PostgreSQL cluster (``initdb``,
  ``pg_ctl``) for tests and benchmarks; :class:`NatsServer` a throwaway
  ``nats-server -js`` (the L2 event stream).

See ``docs/tutorial/property-tests.md``. The kit needs hypothesis, which the
``testing`` extra brings: ``pip install 'triotok[testing]'``.
"""

try:
    import hypothesis  # noqa: F401  # checked here so the error names the extra
except ImportError as exc:
    raise ImportError(
        "triotok.testing needs hypothesis, which is not installed: pip install 'triotok[testing]'",
        name=exc.name,
    ) from exc

from .._util import fixup_module_metadata
from ._natsserver import NatsNotInstalled as NatsNotInstalled
from ._natsserver import NatsServer as NatsServer
from ._pgcluster import PostgresCluster as PostgresCluster
from ._pgcluster import PostgresNotInstalled as PostgresNotInstalled
from ._plugins import PluginHarness as PluginHarness
from ._plugins import open_plugin_harness as open_plugin_harness
from ._stateful import ActorStateMachine as ActorStateMachine
from ._system import TestSystem as TestSystem
from ._system import open_test_system as open_test_system

__all__ = (
    "ActorStateMachine",
    "NatsNotInstalled",
    "NatsServer",
    "PluginHarness",
    "PostgresCluster",
    "PostgresNotInstalled",
    "TestSystem",
    "open_plugin_harness",
    "open_test_system",
)

fixup_module_metadata(__name__, globals())
