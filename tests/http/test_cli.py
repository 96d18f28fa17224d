"""``triotok serve`` as a real process: start, answer, demo keys, SIGTERM, bad config, workers."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from triotok.cli import _parser, main
from triotok.config import FIELDS

CODE = "import sys; from triotok.cli import main; sys.exit(main(sys.argv[1:]))"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIOTOK_")}


async def _start(tmp_path: Path, *args: str) -> tuple[trio.Process, str, str]:
    """Start the server; return the process, its URL and the banner it printed."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", CODE, "serve", "--store", f"sqlite:///{tmp_path}/t.db", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=_env(),
    )
    assert process.stdout is not None
    banner = b""
    while b"serving on" not in banner or (
        b"--demo" in b" ".join(a.encode() for a in args) and b"/openapi.json" not in banner
    ):
        chunk = await process.stdout.receive_some(4096)
        assert chunk, "the server exited before announcing itself"
        banner += chunk
    text = banner.decode()
    url = re.search(r"serving on (http://\S+)", text)
    assert url is not None
    return process, url[1], text


@pytest.mark.slow
async def test_serve_demo_then_sigterm(tmp_path: Path) -> None:
    with trio.fail_after(30):
        process, url, banner = await _start(tmp_path, "--port", "0", "--demo")
        key = re.search(r"demo admin key .*: (ttk_\S+)", banner)
        assert key is not None
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ready")).status_code == 200
            me = await client.get(
                "/api/tenants/current", headers={"Authorization": f"Bearer {key[1]}"}
            )
            assert me.status_code == 200
            assert me.json()["id"] == "demo"
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
        # Idempotent: a second start prints the same keys.
        process, url, again = await _start(tmp_path, "--port", "0", "--demo")
        assert key[1] in again
        process.send_signal(signal.SIGINT)
        assert await process.wait() == 0
    assert (tmp_path / "demo-keys.json").stat().st_mode & 0o777 == 0o600


async def test_invalid_configuration_exits_2_naming_the_field(tmp_path: Path) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, "-c", CODE, "serve", "--port", "99999"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=_env(),
        )
    assert result.returncode == 2
    assert b"invalid configuration: port: must be <= 65535" in result.stderr


async def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(30):
            result = await trio.run_process(
                [
                    sys.executable,
                    "-c",
                    CODE,
                    "serve",
                    "--port",
                    str(port),
                    "--store",
                    f"sqlite:///{tmp_path}/t.db",
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=_env(),
            )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}".encode() in result.stderr


@pytest.mark.slow
async def test_workers_share_one_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with trio.fail_after(60):
        process, url, _ = await _start(tmp_path, "--port", str(port), "--workers", "2")
        pids: set[str] = set()
        # New connections are spread over the workers by the kernel (SO_REUSEPORT);
        # the second worker may still be starting, so keep opening connections.
        for _ in range(2000):
            async with httpx.AsyncClient(base_url=url) as fresh:
                health = (await fresh.get("/health")).json()
            pids.add(str(health["pid"]))
            if len(pids) > 1:
                break
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
    assert len(pids) == 2


# ------------------------------------------------------------------ help texts

HELPS = (
    ["--help"],
    ["serve", "--help"],
    ["tree", "--help"],
    ["index", "--help"],
    ["index", "rebuild", "--help"],
    ["events", "--help"],
    ["events", "status", "--help"],
    ["events", "replay", "--help"],
)
MARKUP = re.compile(r"``|::|:(class|mod|func|data|meth):|\.\. |\*\*")
INTERNAL = re.compile(r"\b_\w+|\bimport|docstring|\bmodule\b|TODO")


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.mark.parametrize("argv", HELPS, ids=" ".join)
def test_help_is_plain_text_for_users(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = _help(argv, capsys)
    assert text.startswith(f"usage: triotok {' '.join(argv[:-1])}".rstrip())
    assert not MARKUP.search(text), MARKUP.search(text)
    assert not INTERNAL.search(text), INTERNAL.search(text)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_every_option_and_command_has_help() -> None:
    parser = _parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {c.dest for c in commands._choices_actions} == {
        "serve",
        "tree",
        "index",
        "plugins",
        "events",
    }
    for choice in commands._choices_actions:
        assert choice.help, choice.dest
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, (name, action.dest)
            assert action.help != argparse.SUPPRESS, (name, action.dest)


def test_serve_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["serve", "--help"], capsys)
    for field in FIELDS:
        assert f"{field.env} " in text, field.name
        assert f"[{field.section}] {field.key} = " in text, field.name
        assert field.help in text, field.name
