"""The documentation says only what the code does: its programs run, its names and links exist.

The server-side claims of docs/howto/serve.md (the tree, ``/ready``) are held
by tests/http/test_serve_docs.py against a live server.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from tests.docs import DOCS, ROOT, code_blocks, section
from triotok import Actor, open_system
from triotok.cli import _parser
from triotok.config import FIELDS
from triotok.transport import open_event_bus

TUTORIAL = DOCS / "tutorial" / "first-actor.md"

# ------------------------------------------------------------------ programs that run as is

#: What each program prints (in this order); the doc shows each of these as a comment.
PROGRAMS = {
    ("README.md", 0): ["hello, trio"],
    ("docs/tutorial/first-actor.md", 0): ["2"],
    ("docs/tutorial/first-actor.md", 1): [
        "/app/fragile ValueError('bad input')",
        "fine",
        "crashed",
    ],
    ("docs/tutorial/first-actor.md", 2): [
        "1",
        "['catalog', 'orders', 'search', 'payments']",
        "{'specs': 4, 'active': 4, 'supervisors': 1, 'workers': 3}",
    ],
}


def test_every_tutorial_block_is_checked() -> None:
    assert len(code_blocks(TUTORIAL, "python")) == 3
    assert len(code_blocks(TUTORIAL)) == 3  # no block in another language to run by hand


@pytest.mark.parametrize(("doc", "index"), sorted(PROGRAMS), ids=lambda v: str(v))
async def test_program_runs_as_is(doc: str, index: int, tmp_path: Path) -> None:
    source = code_blocks(ROOT / doc, "python")[index]
    expected = PROGRAMS[doc, index]
    for line in expected:
        assert f"# {line}" in source, f"{doc} block {index} does not show {line!r}"
    program = tmp_path / "program.py"
    program.write_text(source)
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, str(program)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=tmp_path,
        )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    lines = iter(result.stdout.decode().splitlines())
    for line in expected:  # in order, other lines in between
        assert any(out == line for out in lines), (line, result.stdout.decode())


# ------------------------------------------------------------------ references that resolve


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in ("docs", "src", "tests", "bench"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.suffix in (".md", ".py", ".toml", ".html", ".js") and "__pycache__" not in p.parts
        ]
    return files


_MD_NAME = re.compile(r"(?<![\w/.-])([A-Za-z][\w-]*\.md)\b")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_markdown_file_named_exists() -> None:
    """A name like ``README.md`` in a doc, docstring or comment is a file of the repository."""
    present = {
        p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts
    }
    missing = {
        (str(path.relative_to(ROOT)), name)
        for path in _text_files()
        for name in _MD_NAME.findall(path.read_text())
        if name not in present
    }
    assert not missing


def test_every_relative_link_resolves() -> None:
    broken = []
    for path in [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS.rglob("*.md")]:
        for target in _LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#")[0]).exists():
                broken.append((str(path.relative_to(ROOT)), target))
    assert not broken


# ------------------------------------------------------------------ docs/reference/events.md

EVENTS = DOCS / "reference" / "events.md"


def test_the_three_transports_are_documented_and_none_is_called_planned() -> None:
    """L0, L1 and L2 exist: events.md names each, and no doc or docstring still plans L2."""
    from triotok.store import OutboxTransport  # L1
    from triotok.transport import InMemoryTransport, JetStreamTransport  # L0, L2

    for transport in (InMemoryTransport, OutboxTransport, JetStreamTransport):
        assert f"`{transport.__name__}`" in EVENTS.read_text()
    for path in [*DOCS.rglob("*.md"), *(ROOT / "src").rglob("*.py")]:
        for paragraph in re.split(r"\n\s*\n", path.read_text()):
            if re.search(r"\bL2\b", paragraph):
                assert "planned" not in paragraph, (str(path.relative_to(ROOT)), paragraph)


class Indexer(Actor):
    async def receive(self, message: Any) -> None:
        return None


async def test_the_bus_tree_is_the_one_of_its_example(autojump_clock: MockClock) -> None:
    """The tree drawn in events.md is the tree of its first example."""
    [drawn] = [b for b in code_blocks(EVENTS, "") if "BusActor" in b]
    paths = [line.split()[0] for line in drawn.splitlines()]
    subscribers = re.findall(r"-> (/\S+)", drawn)
    async with open_system(name="app") as system, open_event_bus(system) as bus:
        indexer = await system.spawn(Indexer, name="indexer")
        worker = await system.spawn(Indexer, name="worker")
        await bus.subscribe("product.*", indexer)
        await bus.subscribe("order.*", worker, group="workers")
        tree = system.tree(prefix="/app/bus")
        components = system.tree(prefix="/app/bus", depth=0).get("components", {})
    assert [tree["path"]] + [child["path"] for child in tree["children"]] == paths
    assert subscribers == [indexer.path]
    assert sorted(components) == ["bus", "dead_letter_queue"]


# ------------------------------------------------------------------ docs/howto/serve.md: settings


def test_the_settings_table_is_the_declaration() -> None:
    """serve.md's table lists config.FIELDS: names, TOML keys, variables, defaults, meanings."""
    table = section(DOCS / "howto" / "serve.md", "Configuration")
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| `")
    ]
    assert [row[0] for row in rows] == [f.name for f in FIELDS]
    [commands] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    serve_flags = {o for a in commands.choices["serve"]._actions for o in a.option_strings}
    for row, field in zip(rows, FIELDS, strict=True):
        name, toml, env, flag, default, meaning = row
        assert toml == f"[{field.section}] {field.key}"
        assert env == field.env
        assert default == repr(field.default)
        assert meaning == field.help
        if flag:
            assert flag in serve_flags, name


# ------------------------------------------------------------------ the public contract


def test_the_contract_in_the_docs_is_the_pinned_one() -> None:
    from tests.test_exports import CONTRACT

    [block] = code_blocks(DOCS / "explanation" / "architecture.md", "python")
    names = {
        module: re.findall(r"\w+", body)
        for module, body in re.findall(r"from ([\w.]+) import \(?([^)]*?)\)?\n(?=from|$)", block)
    }
    assert {m: sorted(n) for m, n in names.items()} == {m: sorted(n) for m, n in CONTRACT.items()}
    exec(compile(block, "architecture.md", "exec"), {})  # the imports work
