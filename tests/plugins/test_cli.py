"""``triotok plugins list|enable|disable|restart`` against a live server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio

from tests.http.conftest import Server
from tests.plugins.sample import InlineRecorder, TooNew
from triotok._plugins_command import run
from triotok.cli import _parser


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


async def _cli(server: Server, *argv: str, key: str | None = "") -> tuple[int, str, str]:
    args = _parser().parse_args(["plugins", *argv])
    env = {"TRIOTOK_URL": server.url}
    if key:
        env["TRIOTOK_API_KEY"] = key
    out, err = io.StringIO(), io.StringIO()
    code = await trio.to_thread.run_sync(lambda: run(args, env=env, out=out, err=err))
    return code, out.getvalue(), err.getvalue()


async def test_the_plugins_command(make_server: object) -> None:
    with trio.fail_after(60):
        async with make_server(plugins=(InlineRecorder, TooNew)) as server:  # type: ignore[operator]
            ops = await server.operator()
            code, out, _ = await _cli(server, "list", key=ops)
            assert code == 0
            lines = out.splitlines()
            assert lines[0].split() == [
                "NAME", "STATE", "VERSION", "ISOLATION", "TENANTS", "RESTARTS", "BREAKER", "REASON"
            ]  # fmt: skip
            assert lines[1].split()[:2] == ["inline-recorder", "discovered"]
            assert lines[2].split()[:2] == ["too-new", "failed"]
            assert lines[2].endswith("needs plugin API >=2.0; this platform implements 1.0.0")
            code, out, _ = await _cli(
                server, "enable", "inline-recorder", "--subscribe", "sample.noted", key=ops
            )
            assert (code, out.splitlines()[1].split()[:2]) == (0, ["inline-recorder", "running"])
            status = server.services.plugins.status("inline-recorder")
            assert status.grants is not None
            assert status.grants.subscribe == ("sample.noted",)
            assert status.grants.storage == "inline-recorder"  # the rest as asked
            code, out, _ = await _cli(server, "restart", "inline-recorder", key=ops)
            assert code == 0
            code, out, _ = await _cli(server, "disable", "inline-recorder", key=ops)
            assert (code, out.splitlines()[1].split()[:2]) == (0, ["inline-recorder", "disabled"])
            # Failures and their exit codes.
            assert (await _cli(server, "list", key=None))[0] == 2
            tenant_admin = await server.key("acme", "admin")
            code, _, err = await _cli(server, "list", key=tenant_admin)
            assert code == 2
            assert "refused the key" in err
            code, _, err = await _cli(server, "restart", "nope", key=ops)
            assert code == 1
            assert "plugin_not_found" in err
            code, _, err = await _cli(server, "enable", "too-new", key=ops)
            assert code == 1
            assert "plugin_refused" in err
            code, _, err = await _cli(
                server, "enable", "inline-recorder", "--hosts", "example.com", key=ops
            )
            assert code == 2
            assert "more than inline-recorder asks for" in err
