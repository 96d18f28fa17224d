"""``triotok.testing`` needs the ``testing`` extra (hypothesis) and says so when it is missing."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]

_WITHOUT_HYPOTHESIS = """\
import sys
from importlib.abc import MetaPathFinder

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "hypothesis":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocked())
import triotok, triotok.app  # the runtime does not need it
try:
    import triotok.testing
except ImportError as exc:
    print(type(exc).__name__, exc.name, exc, sep="|")
"""


async def test_the_test_kit_names_its_extra_when_hypothesis_is_missing() -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, "-c", _WITHOUT_HYPOTHESIS],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == (
        "ImportError|hypothesis|triotok.testing needs hypothesis, which is not installed: "
        "pip install 'triotok[testing]'"
    )
    assert result.stderr == b""


def test_the_test_extra_brings_the_testing_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras["testing"]) <= set(extras["test"])
    runtime = project["dependencies"]
    # OpenTelemetry is a runtime dependency since the telemetry layer uses it (issue 15).
    assert not any(r.startswith(("hypothesis", "numpy")) for r in runtime)
    assert any(r.startswith("opentelemetry-sdk") for r in runtime)
