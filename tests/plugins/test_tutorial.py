"""docs/tutorial/write-a-plugin.md runs as written: its package, its plugin and its test program."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest
import trio

import triotok
from tests.docs import DOCS, code_blocks

TUTORIAL = DOCS / "tutorial" / "write-a-plugin.md"
SRC = str(Path(triotok.__file__).resolve().parents[1])

pytestmark = pytest.mark.slow


def test_the_blocks_are_the_ones_this_test_runs() -> None:
    assert len(code_blocks(TUTORIAL, "python")) == 2
    assert len(code_blocks(TUTORIAL, "toml")) == 1


def test_the_entry_point_names_the_plugin_class() -> None:
    [toml] = code_blocks(TUTORIAL, "toml")
    points = tomllib.loads(toml)["project"]["entry-points"]["triotok.plugins"]
    assert points == {"welcome": "welcome_plugin:Welcome"}
    plugin, _ = code_blocks(TUTORIAL, "python")
    assert plugin.startswith("# welcome_plugin/__init__.py\n")
    assert "class Welcome(Plugin):" in plugin


async def test_the_test_program_prints_what_the_tutorial_says(tmp_path: Path) -> None:
    plugin, program = code_blocks(TUTORIAL, "python")
    package = tmp_path / "welcome_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(plugin)
    (tmp_path / "program.py").write_text(program)
    expected = [line.split("  # ", 1)[1] for line in program.splitlines() if "print(" in line]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC])}
    with trio.fail_after(120):
        result = await trio.run_process(
            [sys.executable, "program.py"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=tmp_path,
            env=env,
        )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    assert result.stdout.decode().splitlines() == expected
