"""A hypothesis state machine over the live plugin manager, on a real SQLite store.

Rules enable plugins (with the grant they ask for, a narrower one, or one
that asks too much), disable and restart them, crash their host actor, let
time pass, and *reload*: stop ``/plugins`` and start a new manager over the
same store, as a server restart would. Three plugins: two that run
(``alpha``, ``beta``, inline) and one refused at discovery (``gamma``).

Invariants after every step:

* a refused plugin is ``failed`` with its reason, whatever happened;
* ``running`` holds exactly when the model says the plugin is enabled and its
  subtree has not exceeded its restart intensity; then its subtree runs and
  the bus has one subscription per granted pattern in its consumer group;
* ``discovered``, ``disabled`` and ``failed`` plugins have no subtree and no
  bus subscription;
* the persisted grants are the model's: enabled flag and capabilities;
* a running plugin's grant is within what it asked for.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from triotok._exceptions import InvalidInput
from triotok.actors import ActorRef
from triotok.modules import Module, ModuleContext, RoleTable, Subscription
from triotok.modules.access import KeyDirectory
from triotok.modules.tenants import TenantDirectory
from triotok.plugins import (
    Capabilities,
    Metadata,
    Plugin,
    PluginManager,
    PluginOptions,
    PluginState,
    PluginUnavailable,
    discover,
)
from triotok.plugins._repository import PluginRepository
from triotok.resilience import Backoff
from triotok.store import StoreHandle, StoreOwner
from triotok.testing import ActorStateMachine
from triotok.transport import EventBus, InMemoryTransport

INTENSITY, PERIOD = 2, 30.0


async def _ignore(envelope: Any) -> None:
    return None


class Alpha(Plugin):
    metadata = Metadata("alpha", "1.0.0", api="^1.0")
    capabilities = Capabilities(subscribe=("a.*", "b.*"), storage="alpha")
    isolation = "inline"

    def module(self) -> Module:
        return Module(
            name="alpha",
            subscriptions=(
                Subscription("a.*", lambda _: _ignore),
                Subscription("b.*", lambda _: _ignore),
            ),
        )


class Beta(Plugin):
    metadata = Metadata("beta", "2.1.0", api=">=1.0,<2")
    capabilities = Capabilities(subscribe=("*",))
    isolation = "inline"

    def module(self) -> Module:
        return Module(name="beta", subscriptions=(Subscription("*", lambda _: _ignore),))


class Gamma(Plugin):
    metadata = Metadata("gamma", "1.0.0", api="^3.0")


PLUGINS = (Alpha, Beta, Gamma)
#: Grants a rule may give: what it asked for, narrower, wider (refused).
GRANTS = {
    "alpha": [
        Alpha.capabilities,
        Capabilities(subscribe=("a.*",), storage="alpha"),
        Capabilities(subscribe=("a.x",)),
        Capabilities(subscribe=("c.*",)),  # beyond the request
    ],
    "beta": [
        Beta.capabilities,
        Capabilities(subscribe=("orders.*", "tenant.created")),
        Capabilities(subscribe=("*",), storage="beta"),  # beyond the request
    ],
}


class ManagerMachine(ActorStateMachine):
    system_name = "app"
    system_options = {"intensity": 1000}
    # The store works in a thread, which trio counts as blocked: never jump the
    # clock past real work; the rules move time with advance().
    autojump_threshold = 10.0

    @initialize()
    async def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="triotok-plugins-"))
        self.found = discover(PLUGINS, group=None)
        self.options = PluginOptions(
            intensity=INTENSITY, period=PERIOD, backoff=Backoff(min=0.1, max=0.4, jitter=0.0)
        )
        self.handle = StoreHandle()
        schemas = PluginManager(self.found).schemas()
        from triotok.app import schemas_of
        from triotok.modules.audit import AUDIT

        url = f"sqlite:///{self._tmp / 'plugins.db'}"
        await self.system.spawn(
            StoreOwner, self.handle, url, (*schemas_of((AUDIT,)), *schemas), name="store"
        )
        self.bus = EventBus()
        await self.system.system.root.start_child(self.bus.child_spec("bus"))
        self.ctx = ModuleContext(
            "platform",
            self.system.system,
            self.handle,
            self.bus,
            InMemoryTransport(),
            TenantDirectory("tenants"),
            KeyDirectory("access"),
            RoleTable(),
        )
        self.repository = PluginRepository(self.handle)
        # The model: the grant an operator gave (None: never), whether enabled,
        # and the times the host crashed in the current window.
        self.granted: dict[str, Capabilities | None] = {"alpha": None, "beta": None}
        self.enabled: dict[str, bool] = {"alpha": False, "beta": False}
        self.failed: dict[str, bool] = {"alpha": False, "beta": False}
        self.crashes: dict[str, list[float]] = {"alpha": [], "beta": []}
        await self._open()

    async def _open(self) -> None:
        self.manager = PluginManager(self.found, self.options)
        await self.manager.start(self.ctx)

    def teardown(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ---------------------------------------------------------------- rules

    @rule(name=st.sampled_from(["alpha", "beta"]), choice=st.integers(0, 3))
    async def enable(self, name: str, choice: int) -> None:
        grants = GRANTS[name][choice % len(GRANTS[name])]
        requested = Alpha.capabilities if name == "alpha" else Beta.capabilities
        if grants.within(requested):
            with pytest.raises(InvalidInput):
                await self.manager.enable(name, grants, who="test")
            return
        await self.manager.enable(name, grants, who="test")
        self.granted[name], self.enabled[name], self.failed[name] = grants, True, False
        self.crashes[name] = []

    @rule(name=st.sampled_from(["alpha", "beta"]))
    async def disable(self, name: str) -> None:
        await self.manager.disable(name, who="test")
        if self.granted[name] is None:
            self.granted[name] = Capabilities()
        self.enabled[name], self.failed[name] = False, False

    @rule(name=st.sampled_from(["alpha", "beta"]))
    async def restart(self, name: str) -> None:
        if not self.enabled[name]:
            with pytest.raises(PluginUnavailable):
                await self.manager.restart(name, who="test")
            return
        await self.manager.restart(name, who="test")
        self.failed[name] = False
        self.crashes[name] = []

    @rule(name=st.sampled_from(["alpha", "beta"]))
    async def crash(self, name: str) -> None:
        """The plugin's host fails on a message; its supervisor restarts it, or gives up."""
        if not self.enabled[name] or self.failed[name]:
            return
        host = self.system.system.ref(f"/app/plugins/{name}/host")
        assert isinstance(host, ActorRef)
        host.tell("not a message it knows")
        now = trio.current_time()
        window = [t for t in self.crashes[name] if t > now - PERIOD] + [now]
        self.crashes[name] = window
        if len(window) > INTENSITY:
            self.failed[name] = True
        await self.system.settle()
        await self.system.advance(1.0)  # past the restart backoff

    @rule(seconds=st.sampled_from([5.0, PERIOD + 1.0]))
    async def wait(self, seconds: float) -> None:
        await self.system.advance(seconds)

    @rule()
    async def reload(self) -> None:
        """A restart of the server: a new manager over the same store."""
        await self.manager.stop()
        await self._open()
        for name in self.failed:
            if self.enabled[name]:
                self.failed[name] = False  # started afresh from its persisted grant
                self.crashes[name] = []

    # ---------------------------------------------------------------- invariants

    @invariant()
    def refused_stays_failed(self) -> None:
        status = self.manager.status("gamma")
        assert status.state is PluginState.FAILED
        assert status.reason is not None
        assert "plugin API" in status.reason

    @invariant()
    def states_and_subtrees(self) -> None:
        groups = {info.group for info in self.bus.subscriptions()}
        for name in ("alpha", "beta"):
            status = self.manager.status(name)
            expected = (
                PluginState.FAILED
                if self.failed[name]
                else PluginState.RUNNING
                if self.enabled[name]
                else PluginState.DISABLED
                if self.granted[name] is not None
                else PluginState.DISCOVERED
            )
            assert status.state is expected, (name, status)
            has_tree = True
            try:
                node = self.system.runtime.lookup(f"/app/plugins/{name}")
            except LookupError:
                has_tree = False
            subscribed = f"plugin.{name}" in groups
            if expected is PluginState.RUNNING:
                assert has_tree
                assert node.state.value == "running"
                grants = self.granted[name]
                assert grants is not None
                assert status.grants == grants
                assert subscribed == bool(status.subscriptions)
                count = sum(1 for i in self.bus.subscriptions() if i.group == f"plugin.{name}")
                assert count == len(status.subscriptions)
                for pattern in status.subscriptions:
                    assert grants.may_subscribe(pattern)
            else:
                assert not has_tree, (name, expected)
                assert not subscribed

    @invariant()
    async def grants_are_persisted(self) -> None:
        saved = await self.repository.grants()
        for name in ("alpha", "beta"):
            if self.granted[name] is None:
                assert name not in saved
                continue
            assert saved[name].enabled == self.enabled[name]
            if self.enabled[name]:
                assert saved[name].grants == self.granted[name]


ManagerMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestManagerMachine = ManagerMachine.TestCase
