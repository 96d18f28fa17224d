"""``triotok tree`` as a real process against a real server on 127.0.0.1."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.http.conftest import Server
from tests.http.operators import populate
from triotok._tree_command import TreeOptions, render_tree, run, use_color
from triotok.config import load_settings

CODE = "import sys; from triotok.cli import main; sys.exit(main(sys.argv[1:]))"
ESC = "\x1b["


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The client does not care about the backend: SQLite only."""
    return f"sqlite:///{tmp_path}/triotok.db"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_") and k != "NO_COLOR"}
    env.update(extra)
    return env


async def tree(*args: str, key: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = _env() if key is None else _env(TRIOTOK_API_KEY=key)
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-c", CODE, "tree", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def test_renders_paths_states_breakers_and_errors(server: Server) -> None:
    await populate(server)
    result = await tree("--url", server.url, "--no-color", key=await server.operator())
    text = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert ESC not in text
    lines = text.splitlines()
    assert lines[0].startswith("app ")
    assert "supervisor" in lines[0]
    for name in ("store", "feed", "bus", "relay", "tenants", "access", "http", "payments"):
        found = [line for line in lines if f"── {name} " in line]
        assert found, name  # "payments": this test's actor and the orders module's gateway
        for line in found:
            assert "running" in line
            assert "mailbox 0/1000" in line
    [transport] = [line for line in lines if "── transport " in line]
    assert "supervisor  running     one_for_one 3/5.0s" in transport
    [payments] = [line for line in lines if "── payments" in line and "gateway" in line]
    assert "breaker gateway=forced_open" in payments
    [crasher] = [line for line in lines if "── crasher" in line]
    assert "restarts 1" in crasher
    assert "error: ValueError: <img" in crasher
    assert lines[-1].startswith("└── ")


async def test_filters_and_key_flag(server: Server) -> None:
    key = await server.operator()
    sub = await tree("--url", server.url, "--key", key, "--prefix", "/app/tenants", "--depth", "0")
    failed = await tree("--url", server.url, "--key", key, "--state", "failed")
    assert sub.returncode == 0
    assert sub.stdout.decode().split()[:3] == ["tenants", "actor", "running"]
    assert len(sub.stdout.decode().splitlines()) == 1
    # No failed node: only the root is left.
    assert failed.stdout.decode().splitlines() == [
        line for line in failed.stdout.decode().splitlines() if line.startswith("app ")
    ]


async def test_errors_are_one_line_with_exit_codes(server: Server) -> None:
    viewer = await server.key("acme", "viewer")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    ops = await server.operator()
    cases = {
        "nokey": ((), None, 2, "no API key: pass --key or set TRIOTOK_API_KEY"),
        "bad": ((), "ttk_0000000000000000_" + "x" * 43, 2, "refused the key (401 invalid_api_key"),
        "other": ((), viewer, 2, "the server refused the key (403 forbidden"),
        "refused": (("--url", closed), "k", 1, f"cannot connect to {closed}: connection refused"),
        "missing": (("--prefix", "/app/nope"), ops, 1, "404 actor_not_found: no actor at '/app/"),
    }
    results: dict[str, subprocess.CompletedProcess[bytes]] = {}

    async def one(name: str, args: tuple[str, ...], key: str | None) -> None:
        results[name] = await tree("--url", server.url, *args, key=key)

    async with trio.open_nursery() as nursery:
        for name, (args, key, _, _) in cases.items():
            nursery.start_soon(one, name, args, key)
    for name, (_, _, code, message) in cases.items():
        result = results[name]
        err = result.stderr.decode()
        assert result.returncode == code, (name, err)
        assert err.startswith("triotok tree: "), (name, err)
        assert message in err, (name, err)
        assert len(err.splitlines()) == 1, (name, err)
        assert result.stdout == b"", name


async def test_watch_redraws_until_ctrl_c(server: Server) -> None:
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-c", CODE, "tree", "--url", server.url, "--watch", "0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(TRIOTOK_API_KEY=await server.operator()),
        )
        assert process.stdout is not None
        assert process.stderr is not None
        seen = b""
        while seen.count(b"updated") < 2:
            chunk = await process.stdout.receive_some(65536)
            assert chunk, "triotok tree --watch exited early"
            seen += chunk
        process.send_signal(signal.SIGINT)
        assert await process.wait() == 0
        stderr = await process.stderr.receive_some(65536)
    assert b"Traceback" not in (stderr or b"")
    assert seen.count(b"\xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 http") >= 2  # "└── http" twice
    assert ESC.encode() not in seen  # a pipe is not a terminal


def test_render_with_colours() -> None:
    tree = {
        "path": "/app",
        "name": "app",
        "kind": "supervisor",
        "state": "running",
        "restarts": 0,
        "strategy": "one_for_one",
        "intensity": 3,
        "period": 5.0,
        "children": [
            {
                "path": "/app/a",
                "name": "a",
                "kind": "actor",
                "state": "failed",
                "restarts": 4,
                "last_error": {"type": "OSError", "message": "disk\nfull"},
                "statistics": {"mailbox_depth": 7, "capacity": 10, "processed": 3, "failed": 4},
                "components": {"db": {"state": "half_open"}, "cache": {"hits": 1}},
                "children": [],
            }
        ],
    }
    plain = render_tree(tree)
    coloured = render_tree(tree, color=True)
    assert ESC not in plain
    assert plain.splitlines()[1].split() == [
        "└──",
        "a",
        "actor",
        "failed",
        "mailbox",
        "7/10",
        "processed",
        "3",
        "failed",
        "4",
        "restarts",
        "4",
        "breaker",
        "db=half_open",
        "error:",
        "OSError:",
        "disk",
        "full",
    ]
    assert "\x1b[1;31mfailed" in coloured
    assert "\x1b[32mrunning" in coloured
    assert "\x1b[33mbreaker db=half_open" in coloured


def test_colour_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_color(Tty(), no_color=False, env={})
    assert not use_color(Tty(), no_color=True, env={})
    assert not use_color(Tty(), no_color=False, env={"NO_COLOR": "1"})
    assert not use_color(io.StringIO(), no_color=False, env={})


def test_run_without_key_says_so() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(TreeOptions(key=None), out=out, err=err) == 2
    assert "no API key" in err.getvalue()


def test_the_server_ignores_the_client_variables() -> None:
    env = {"TRIOTOK_API_KEY": "ttk_x", "TRIOTOK_URL": "http://127.0.0.1:1", "TRIOTOK_PORT": "0"}
    assert load_settings(env=env).port == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000", "127.0.0.1:8000", "http://h:port"])
def test_an_invalid_url_is_a_usage_error(url: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(TreeOptions(url=url, key="ttk_x"), out=out, err=err) == 2
    assert err.getvalue().startswith(f"triotok tree: invalid --url {url!r}")
    assert len(err.getvalue().splitlines()) == 1
    assert out.getvalue() == ""


def test_a_rebuild_shows_as_a_progress_bar_and_the_index_lag_in_events_and_seconds() -> None:
    tree = {
        "path": "/app/modules/search/index",
        "name": "index",
        "kind": "actor",
        "state": "running",
        "restarts": 0,
        "components": {
            "rebuild": {
                "rebuild_id": 3,
                "status": "running",
                "rows_done": 5200,
                "rows_total": 10000,
                "percent": 52.0,
                "rows_per_s": 4100.0,
                "eta_s": 1.2,
            },
            "projection": {
                "lag_events": 4,
                "lag_seconds": 0.25,
                "applied_position": 96,
                "head_position": 100,
            },
        },
    }
    line = render_tree(tree)
    assert "rebuild [##########..........] 52.0% 5,200/10,000 rows 4,100 rows/s ETA 1s" in line
    assert "lag 4 events/0.25s  applied 96/100" in line
    tree["components"]["rebuild"].update(status="done", percent=100.0, rows_done=10000)  # type: ignore[index]
    assert "[####################] 100.0% 10,000/10,000 rows 4,100 rows/s done" in render_tree(tree)
