"""Discovery refuses what cannot run, with a reason, and never stops the platform from starting."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.http.conftest import ServerFactory
from tests.plugins.helpers import enable
from tests.plugins.sample import FailsToStart, InlineRecorder, Recorder, TooNew
from triotok.modules import Grant, Module, Permission, Subscription
from triotok.plugins import Capabilities, Metadata, Plugin, PluginState, discover
from triotok.store import Migration


class NotAPlugin:
    metadata = Metadata("not-a-plugin", "1.0.0", api="^1.0")


class WrongName(Plugin):
    metadata = Metadata("wrong-name", "1.0.0", api="^1.0")

    def module(self) -> Module:
        return Module(name="other")


class RoutesUnasked(Recorder):
    metadata = Metadata("routes-unasked", "1.0.0", api="^1.0")
    capabilities = Capabilities(subscribe=("sample.*",))


class Overreach(Plugin):
    metadata = Metadata("overreach", "1.0.0", api="^1.0")
    capabilities = Capabilities(subscribe=("content.*",))

    def module(self) -> Module:
        async def handle(envelope: object) -> None:
            return None

        return Module(name="overreach", subscriptions=(Subscription("*", lambda _: handle),))


class ForeignPermission(Plugin):
    metadata = Metadata("foreign", "1.0.0", api="^1.0")

    def module(self) -> Module:
        return Module(
            name="foreign", permissions=(Grant(Permission("tenant", "admin"), ("viewer",)),)
        )


class ProcessWithMigrations(Plugin):
    metadata = Metadata("migrating", "1.0.0", api="^1.0")

    def module(self) -> Module:
        step = Migration(
            1, "t", sqlite=("CREATE TABLE t (x)",), postgresql=("CREATE TABLE t (x int)",)
        )
        return Module(name="migrating", migrations=(step,))


class BrokenModule(Plugin):
    metadata = Metadata("broken", "1.0.0", api="^1.0")

    def module(self) -> Module:
        raise KeyError("settings")


def _reasons(*plugins: type) -> dict[str, str | None]:
    return {found.name: found.error for found in discover(plugins, group=None)}  # type: ignore[arg-type]


def test_refusals_name_their_reason() -> None:
    reasons = _reasons(
        Recorder, TooNew, WrongName, RoutesUnasked, Overreach, ForeignPermission,
        ProcessWithMigrations, BrokenModule, NotAPlugin,
    )  # fmt: skip
    assert reasons.pop("recorder") is None
    assert reasons == {
        "too-new": "needs plugin API >=2.0; this platform implements 1.0.0",
        "wrong-name": "its Module is named 'other', not 'wrong-name'",
        "routes-unasked": "it declares routes but does not ask for routes=True",
        "overreach": "it subscribes to '*', outside its capabilities",
        "foreign": "it may only declare plugin.foreign:* permissions, not tenant:admin",
        "migrating": (
            "a process-isolated plugin declares no migrations: it reaches the platform through"
            " the plugin API only (use isolation='inline' for trusted code)"
        ),
        "broken": "reading its Module failed: KeyError: 'settings'",
        "not-a-plugin": reasons["not-a-plugin"],
    }
    assert "is not a triotok.plugins.Plugin subclass" in str(reasons["not-a-plugin"])


def test_a_name_is_taken_by_the_first_candidate() -> None:
    class Again(InlineRecorder):
        pass

    found = discover((InlineRecorder, Again), group=None)
    assert [f.error for f in found] == [None, "duplicate name: built-in has it"]


def test_a_plugins_directory_is_read_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(
        "from triotok.plugins import Metadata, Plugin\n"
        "class Good(Plugin):\n"
        "    metadata = Metadata('good', '1.0.0', api='^1.0')\n"
        "PLUGIN = Good\n"
    )
    (tmp_path / "syntax.py").write_text("def (:\n")
    (tmp_path / "unnamed.py").write_text("X = 1\n")
    (tmp_path / "packaged").mkdir()
    (tmp_path / "packaged" / "__init__.py").write_text(
        "from triotok.plugins import Metadata, Plugin\n"
        "class P(Plugin):\n"
        "    metadata = Metadata('packaged', '0.1.0', api='>=1.0')\n"
        "    isolation = 'inline'\n"
        "PLUGIN = P\n"
    )
    (tmp_path / "_private.py").write_text("raise SystemExit\n")
    found = {f.name: f for f in discover(directory=tmp_path, group=None)}
    assert found["good"].ok
    assert found["good"].location == ("path", str(tmp_path / "good.py"), "PLUGIN")
    assert found["packaged"].ok
    assert found["syntax"].error is not None
    assert found["syntax"].error.startswith("import failed: SyntaxError")
    assert found["unnamed"].error == (
        "import failed: AttributeError: module 'triotok_plugins_dir.unnamed' has no attribute"
        " 'PLUGIN'"
    )
    assert "_private" not in found
    missing = discover(directory=tmp_path / "nope", group=None)
    assert [f.error for f in missing] == ["the plugins directory does not exist"]


async def test_broken_plugins_never_stop_the_platform(make_server: ServerFactory) -> None:
    plugins = (TooNew, FailsToStart, InlineRecorder)
    with trio.fail_after(60):
        async with make_server(plugins=plugins) as server:
            failed = await server.client.post(
                "/system/plugins/fails-to-start/enable",
                json={},
                headers=server.auth(await server.operator()),
            )
            assert failed.status_code == 200
            assert failed.json()["state"] == "failed"
            assert failed.json()["reason"] == "it did not start: RuntimeError: no configuration"
            refused = await server.client.post(
                "/system/plugins/too-new/enable",
                json={},
                headers=server.auth(await server.operator()),
            )
            assert refused.status_code == 409
            assert refused.json()["code"] == "plugin_refused"
            await enable(server, "inline-recorder")
        # Restarted: the one that fails to start is failed again; the others run.
        async with make_server(plugins=plugins) as server:
            assert (await server.client.get("/ready")).status_code == 200
            manager = server.services.plugins
            states = {s.name: (s.state, s.reason) for s in manager.list()}
            assert states == {
                "fails-to-start": (
                    PluginState.FAILED,
                    "it did not start: RuntimeError: no configuration",
                ),
                "inline-recorder": (PluginState.RUNNING, None),
                "too-new": (
                    PluginState.FAILED,
                    "needs plugin API >=2.0; this platform implements 1.0.0",
                ),
            }
            ops = server.auth(await server.operator())
            listed = (await server.client.get("/system/plugins", headers=ops)).json()["items"]
            assert [(p["name"], p["state"]) for p in listed] == [
                ("fails-to-start", "failed"),
                ("inline-recorder", "running"),
                ("too-new", "failed"),
            ]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"
