"""A third-party plugin, installed as its own package, from discovery to a server restart.

``tests/plugins/hello_package`` is a separate distribution (``triotok-hello``)
declaring the entry point ``hello = "triotok_hello:Hello"`` in the group
``triotok.plugins``. The fixture builds it into a wheel (by the wheel format
itself: the shared test venv has no ``wheel`` package, and the build must not
need the network) and installs it with ``pip install --target`` into a
directory put on ``sys.path`` for the test, so the shared venv stays as it
is. Then, over real HTTP: discovered through its entry point, enabled by an
operator, switched on by a tenant, it serves its route from its child
process, receives the tenant's content events, and after a server restart on
the same database it runs again with its grant and the tenant's switch.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import trio

from tests.http.conftest import ServerFactory
from tests.plugins.helpers import enable
from triotok.plugins import PluginOptions, PluginState
from triotok.resilience import Backoff

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).with_name("hello_package")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


def _record(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(source: Path, out: Path) -> Path:
    """A PEP 427 wheel of ``source`` (its pyproject's name, version and entry points)."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist = f"{name.replace('-', '_')}-{version}"
    files: dict[str, bytes] = {}
    for path in sorted(source.rglob("*.py")):
        files[path.relative_to(source).as_posix()] = path.read_bytes()
    points = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in project.get("entry-points", {}).items()
    )
    info = f"{dist}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: {project.get('description', '')}\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: triotok-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = points.encode()
    record = [_record(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = out / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``triotok-hello`` pip-installed into its own directory (not the shared venv)."""
    where = tmp_path_factory.mktemp("hello")
    wheel = build_wheel(PACKAGE, where)
    target = where / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True,
        timeout=120,
    )  # fmt: skip
    assert (target / "triotok_hello" / "__init__.py").exists()
    return target


OPTIONS = PluginOptions(backoff=Backoff(min=0.05, max=0.2, jitter=0.0))


async def test_an_installed_package_is_discovered_enabled_served_and_survives_a_restart(
    make_server: ServerFactory, installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(installed))
    with trio.fail_after(90):
        async with make_server(plugin_options=OPTIONS) as server:
            manager = server.services.plugins
            found = manager.status("hello")
            assert found.state is PluginState.DISCOVERED
            assert found.source == "entry point hello = triotok_hello:Hello (triotok-hello)"
            assert found.isolation == "process"
            enabled = await enable(server, "hello", "acme")
            assert enabled["state"] == "running"
            assert enabled["endpoints"] == ["GET /api/plugins/hello/greeting"]
            key = server.auth(await server.key("acme", "admin"))
            created = await server.client.post(
                "/api/content/nodes",
                json={"kind": "page", "translations": {"en": {"title": "Hi", "slug": "hi"}}},
                headers=key,
            )
            assert created.status_code == 201
            await manager.wait_for("hello", lambda s: s.statistics["calls"].get("ok", 0) >= 1)
            greeting = await server.client.get("/api/plugins/hello/greeting", headers=key)
            assert greeting.status_code == 200, greeting.text
            assert greeting.json()["hello"] == "acme"
            assert greeting.json()["nodes"] == 1
            import os

            assert greeting.json()["pid"] != os.getpid()  # served from its child process
            viewer = server.auth(await server.key("acme", "viewer"))
            assert (
                await server.client.get("/api/plugins/hello/greeting", headers=viewer)
            ).status_code == 200  # plugin.hello:read goes to viewers too
        # A new server on the same database: the grant and the switch are back.
        async with make_server(plugin_options=OPTIONS) as again:
            status = again.services.plugins.status("hello")
            assert status.state is PluginState.RUNNING
            assert status.grants == enabled_grants(enabled)
            key = again.auth(await again.key("acme", "admin"))
            greeting = await again.client.get("/api/plugins/hello/greeting", headers=key)
            assert greeting.status_code == 200, greeting.text
            assert greeting.json()["nodes"] == 1  # its storage survived as well
            audit = await again.app.context.store.store.fetch(
                "SELECT action FROM audit_log WHERE resource = $1 ORDER BY id", "plugin/hello"
            )
            assert [r["action"] for r in audit] == ["plugin.enable", "plugin.switch_on"]


def enabled_grants(view: dict[str, object]) -> object:
    from triotok.plugins import Capabilities

    grants = view["grants"]
    assert isinstance(grants, dict)
    return Capabilities.from_dict(grants)
