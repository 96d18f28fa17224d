"""The layering of ``src/triotok`` (docs/explanation/architecture.md), checked on the source.

Every ``import`` and ``from ... import`` in every file (module level, inside
functions, under ``TYPE_CHECKING``) is resolved to an absolute module name and
held against these rules:

1. **Imports point downwards only**, in the order of :data:`LAYERS`; the
   composition root (``app``, ``cli``, ``config``, the ``triotok`` package
   itself, ``testing``) may use everything and each other. The one upward
   edge: a module's ``modules/<name>/_routes.py`` uses ``triotok.http``'s
   public names (``Route``, ``Call``, ``Reply``) to declare its routes.
2. **No reaching into another package's privates**: outside its own package a
   module is imported through the package's public names (``triotok.actors``,
   ``triotok.actors.lowlevel``), never ``triotok.actors._cell``.
3. **The core imports no I/O library**: ``resilience/``, ``actors/`` and
   ``supervision/`` use the standard library minus its I/O modules, trio
   (with ``outcome``, trio's own) and cachetools; the leaves ``_util``,
   ``_text``, ``_json`` and ``_exceptions`` only the standard library; the sans-I/O policies
   (:data:`SANS_IO`) not even trio.
4. **Only a module's own ``_routes.py`` speaks HTTP**: nothing else under
   ``modules/`` imports ``triotok.http``.
5. **Modules never import each other**: ``modules/<a>/`` imports nothing of
   ``modules/<b>/``; the shared contract files ``modules/_*.py`` are for all.
6. **Only ``telemetry/`` speaks OpenTelemetry and Prometheus**: the libraries of
   :data:`TELEMETRY_LIBRARIES` are imported nowhere else, so the core, the
   store and the transport know telemetry only through their own seams.

:func:`violations` is the checker; the tests run it on the real tree (no
violation) and on small fake trees (each rule fires).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import triotok

SRC = Path(triotok.__file__).resolve().parent

#: Bottom to top; a package may import only packages strictly below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_exceptions",),
    ("_text",),
    ("_json",),
    ("_util",),
    ("resilience",),
    ("actors",),
    ("supervision",),
    ("transport",),
    ("store",),
    ("telemetry",),
    ("modules",),
    ("plugins",),
    ("http",),
    (
        "__init__",
        "app",
        "cli",
        "config",
        "_tree_command",
        "_index_command",
        "_plugins_command",
        "_events_command",
        "testing",
    ),
)
RANK = {package: rank for rank, group in enumerate(LAYERS) for package in group}
TOP = len(LAYERS) - 1

CORE = frozenset({"resilience", "actors", "supervision"})
LEAVES = frozenset({"_exceptions", "_text", "_json", "_util"})
#: The third-party libraries the core may use.
CORE_LIBRARIES = frozenset({"trio", "outcome", "cachetools"})  # outcome: trio's own
#: Standard-library modules that do I/O (or run another event loop): not in the core.
STDLIB_IO = frozenset(
    {
        "asyncio",
        "ftplib",
        "http",
        "imaplib",
        "mmap",
        "multiprocessing",
        "poplib",
        "select",
        "selectors",
        "smtplib",
        "socket",
        "socketserver",
        "sqlite3",
        "ssl",
        "subprocess",
        "urllib",
        "wsgiref",
        "xmlrpc",
    }
)
#: The libraries only ``telemetry/`` may import.
TELEMETRY_LIBRARIES = frozenset({"opentelemetry", "prometheus_client", "pythonjsonlogger"})
#: Pure state machines: no trio either (time is passed in).
SANS_IO = frozenset(
    {
        "resilience/_backoff.py",
        "resilience/_breaker.py",
        "resilience/_modes.py",
        "resilience/_ratelimit.py",
        "resilience/_retry.py",
        "supervision/_intensity.py",
    }
)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["triotok", *parts])


def _imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``."""
    here = _module_name(root, path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            # ``from . import _x`` imports the submodule ``_x``.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                relative = Path(*candidate.split(".")[1:])
                if (root / relative).is_dir() or (root / relative).with_suffix(".py").exists():
                    yield node.lineno, candidate


def _unit(module: str) -> tuple[str, ...]:
    """The package a module of ours belongs to: ``("actors",)``, ``("modules", "tenants")``."""
    parts = module.split(".")[1:]
    if not parts:
        return ("__init__",)
    if parts[0] == "modules" and len(parts) > 1 and not parts[1].startswith("_"):
        return ("modules", parts[1])
    return (parts[0],)


def violations(root: Path) -> list[str]:
    """Every breach of the rules in this module's docstring, as ``file:line: reason``."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        source = _unit(_module_name(root, path))
        layer = source[0]
        for line, target in _imports(root, path):
            where = f"{relative}:{line}"
            top = target.split(".")[0]
            if top != "triotok":
                if layer in LEAVES and top not in sys.stdlib_module_names | {"__future__"}:
                    found.append(f"{where}: a leaf imports {target}")
                if layer in CORE:
                    if top in STDLIB_IO:
                        found.append(f"{where}: the core imports the I/O module {target}")
                    elif top not in sys.stdlib_module_names | CORE_LIBRARIES | {"__future__"}:
                        found.append(f"{where}: the core imports the library {target}")
                if relative in SANS_IO and top == "trio":
                    found.append(f"{where}: a sans-I/O policy imports trio")
                if top in TELEMETRY_LIBRARIES and layer != "telemetry":
                    found.append(f"{where}: only telemetry imports {target}")
                continue
            dest = _unit(target)
            if dest[0] != layer:
                if dest[0] not in RANK:
                    found.append(f"{where}: {target} is in no layer")
                elif layer not in RANK:
                    found.append(f"{where}: {relative} is in no layer")
                elif not (
                    RANK[dest[0]] < RANK[layer]
                    or RANK[layer] == RANK[dest[0]] == TOP
                    or (layer == "modules" and dest[0] == "http")  # rule 4 decides
                ):
                    found.append(f"{where}: {layer} imports {target}, which is not below it")
                inner = target.split(".")[2:]
                if any(part.startswith("_") for part in inner):
                    found.append(f"{where}: imports the private module {target}")
            if layer == "modules":
                if dest[0] == "http" and path.name != "_routes.py":
                    found.append(f"{where}: only a module's _routes.py imports {target}")
                if len(source) == 2 and len(dest) == 2 and dest != source:
                    found.append(f"{where}: module {source[1]} imports module {dest[1]}")
    return found


def test_the_source_tree_keeps_its_layers() -> None:
    assert violations(SRC) == []


def test_every_package_is_in_a_layer() -> None:
    packages = {p.stem for p in SRC.glob("*.py")} | {
        p.name for p in SRC.iterdir() if (p / "__init__.py").exists()
    }
    assert packages == set(RANK), "add the new package to LAYERS"


# ------------------------------------------------------------------ the checker fires


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "triotok"
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        for parent in target.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"actors/_cell.py": "from ..store import Store\n", "store/__init__.py": ""},
            "actors/_cell.py:1: actors imports triotok.store, which is not below it",
            id="upwards",
        ),
        pytest.param(
            {"supervision/_x.py": "from ..actors._cell import ActorCell\n", "actors/_cell.py": ""},
            "supervision/_x.py:1: imports the private module triotok.actors._cell",
            id="private",
        ),
        pytest.param(
            {"transport/_x.py": "from triotok.actors import _cell\n", "actors/_cell.py": ""},
            "transport/_x.py:1: imports the private module triotok.actors._cell",
            id="private-submodule",
        ),
        pytest.param(
            {"resilience/_x.py": "def f():\n    import sqlite3\n"},
            "resilience/_x.py:2: the core imports the I/O module sqlite3",
            id="core-io",
        ),
        pytest.param(
            {"actors/_x.py": "import httpx\n"},
            "actors/_x.py:1: the core imports the library httpx",
            id="core-library",
        ),
        pytest.param(
            {"resilience/_breaker.py": "import trio\n"},
            "resilience/_breaker.py:1: a sans-I/O policy imports trio",
            id="sans-io",
        ),
        pytest.param(
            {"_util/_x.py": "import trio\n"},
            "_util/_x.py:1: a leaf imports trio",
            id="leaf",
        ),
        pytest.param(
            {"modules/shop/_model.py": "from ...http import Route\n", "http/__init__.py": ""},
            "modules/shop/_model.py:1: only a module's _routes.py imports triotok.http",
            id="modules-http",
        ),
        pytest.param(
            {"modules/shop/_x.py": "from ..tenants import Tenant\n", "modules/tenants/a.py": ""},
            "modules/shop/_x.py:1: module shop imports module tenants",
            id="module-to-module",
        ),
        pytest.param(
            {"store/_x.py": "from opentelemetry import trace\n"},
            "store/_x.py:1: only telemetry imports opentelemetry",
            id="telemetry-library",
        ),
        pytest.param(
            {"app.py": "def f():\n    import prometheus_client\n"},
            "app.py:2: only telemetry imports prometheus_client",
            id="telemetry-library-composition-root",
        ),
    ],
)
def test_each_rule_fires(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    assert violations(_tree(tmp_path, files)) == [expected]


def test_what_the_rules_allow(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "supervision/_x.py": "from ..actors.lowlevel import ActorCell\nimport trio\n",
            "actors/lowlevel.py": "from ._cell import ActorCell\n",
            "actors/_cell.py": "from .._util import seconds\nfrom .._exceptions import E\n",
            "_util/_v.py": "from .._exceptions import E\nfrom collections.abc import Callable\n",
            "modules/shop/_routes.py": "from ...http import Route\nfrom .._module import M\n",
            "modules/_module.py": "",
            "http/__init__.py": "from ..modules.shop import SHOP\n",
            "app.py": "from .config import Settings\nfrom . import __version__\n",
            "config.py": "",
        },
    )
    assert violations(root) == []


def test_the_core_runs_without_loading_telemetry_libraries() -> None:
    """Importing and starting the core loads no OpenTelemetry, Prometheus or JSON-log module."""
    import subprocess

    libraries = sorted(TELEMETRY_LIBRARIES)
    code = (
        "import sys, trio\n"
        "from triotok import Actor, open_system\n"
        "from triotok.store import open_store\n"
        "from triotok.transport import EventBus\n"
        "class A(Actor):\n"
        "    async def receive(self, m): return m\n"
        "async def main():\n"
        "    async with open_system() as s:\n"
        "        r = await s.spawn(A, name='a')\n"
        "        assert await r.ask(1) == 1\n"
        "trio.run(main)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {libraries!r})\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_tracing_off_loads_no_opentelemetry() -> None:
    """The application with tracing off (the default) never imports the OpenTelemetry SDK."""
    import subprocess

    code = (
        "import sys\n"
        "from triotok.telemetry import Telemetry, TelemetryOptions\n"
        "t = Telemetry(TelemetryOptions(metrics=True))\n"
        "import triotok.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
