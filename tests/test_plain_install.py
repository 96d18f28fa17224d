"""Every ``triotok`` command works on the runtime dependencies alone (no test or bench extras).

httpx is a runtime dependency (the orders module's http payment provider
uses it, imported on first use); pytest, hypothesis and the other test and
bench tools are extras, and the commands must not need them.

The slow test proves it for real: a throwaway venv, ``pip install`` of the
project without extras (from PyPI, or whatever index pip is configured with),
then the commands. The fast one runs the commands in this environment with
every extra-only package made unimportable, so a regression shows without
building a venv.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["serve", "--help"], ["tree", "--help"])


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without our source tree on the path or any ``TRIOTOK_*`` setting."""
    skip = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NO_COLOR"}
    env = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith("TRIOTOK_")}
    env.update(extra)
    return env


def _closed_url() -> str:
    """A 127.0.0.1 URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _assert_refused(result: subprocess.CompletedProcess[bytes], url: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err
    assert err.endswith("\n")
    assert err.splitlines() == [f"triotok tree: cannot connect to {url}: connection refused"]
    assert result.stdout == b""


# ------------------------------------------------------------------ fast: extras blocked


def _extra_only_modules() -> set[str]:
    """Top-level import names of the packages that only the extras bring."""

    def name(requirement: str) -> str:
        return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {name(r) for r in project["dependencies"]}
    extras = {name(r) for group in project["optional-dependencies"].values() for r in group}
    only = extras - runtime
    modules = {
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in only for d in dists)
    }
    # The point of the test: the test tools are extras. (httpx was the sentinel until the
    # orders module's http payment provider made it a runtime dependency.)
    assert {"pytest", "hypothesis"} <= modules
    assert "httpx" not in modules
    return modules


_BLOCKING_MAIN = """\
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(","))

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (an extra)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
from triotok.cli import main
sys.exit(main(sys.argv[2:]))
"""


async def _run_blocked(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    blocked = ",".join(sorted(_extra_only_modules()))
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-c", _BLOCKING_MAIN, blocked, *argv],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
async def test_help_without_the_extras(argv: list[str]) -> None:
    env = {**_clean_env(), "PYTHONPATH": str(ROOT / "src")}
    result = await _run_blocked(*argv, env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"usage: triotok")
    assert result.stderr == b""


async def test_tree_without_the_extras_reports_a_refused_connection() -> None:
    url = _closed_url()
    env = {**_clean_env(TRIOTOK_API_KEY="ttk_x"), "PYTHONPATH": str(ROOT / "src")}
    _assert_refused(await _run_blocked("tree", "--url", url, env=env), url)


# ------------------------------------------------------------------ slow: a plain pip install


async def _run(*argv: str | Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [str(a) for a in argv],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=cwd,
        env=_clean_env(**extra),
    )


def _ready(url: str) -> int:
    with urllib.request.urlopen(f"{url}/ready", timeout=10) as answer:
        status: int = answer.status
        return status


@pytest.mark.slow
async def test_a_plain_install_runs_every_command(tmp_path: Path) -> None:
    # A copy of the project, so pip's in-tree build writes nothing into the checkout.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    venv = tmp_path / "venv"
    bin_ = venv / "bin"
    with trio.fail_after(240):
        made = await _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
        assert made.returncode == 0, made.stderr.decode()
        installed = await _run(
            bin_ / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            project,
            cwd=tmp_path,
        )
        assert installed.returncode == 0, installed.stderr.decode()[-4000:]

    with trio.fail_after(60):
        where = await _run(
            bin_ / "python", "-c", "import triotok; print(triotok.__file__)", cwd=tmp_path
        )
        assert where.returncode == 0, where.stderr.decode()
        assert where.stdout.decode().startswith(str(venv))  # not our source tree
        # The extras are not there; httpx is (a runtime dependency: the http payment provider).
        for extra in ("pytest", "hypothesis"):
            absent = await _run(bin_ / "python", "-c", f"import {extra}", cwd=tmp_path)
            assert absent.returncode == 1, extra
            assert f"No module named '{extra}'".encode() in absent.stderr
        httpx = await _run(bin_ / "python", "-c", "import httpx", cwd=tmp_path)
        assert httpx.returncode == 0, httpx.stderr.decode()

        for argv in COMMANDS:
            helped = await _run(bin_ / "triotok", *argv, cwd=tmp_path)
            assert helped.returncode == 0, (argv, helped.stderr.decode())
            assert helped.stdout.startswith(b"usage: triotok"), argv
            assert helped.stderr == b"", argv

        url = _closed_url()
        refused = await _run(
            bin_ / "triotok", "tree", "--url", url, cwd=tmp_path, TRIOTOK_API_KEY="ttk_x"
        )
        _assert_refused(refused, url)

        # The server too: start it, ask /ready with the stdlib, stop it with SIGTERM.
        process = await trio.lowlevel.open_process(
            [
                str(bin_ / "triotok"),
                "serve",
                "--port",
                "0",
                "--store",
                f"sqlite:///{tmp_path}/t.db",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            env=_clean_env(),
        )
        assert process.stdout is not None
        banner = b""
        while b"serving on" not in banner:
            chunk = await process.stdout.receive_some(4096)
            assert chunk, "the server exited before announcing itself"
            banner += chunk
        served = re.search(rb"serving on (http://\S+)", banner)
        assert served is not None
        assert await trio.to_thread.run_sync(_ready, served[1].decode()) == 200
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
