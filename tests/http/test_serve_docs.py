"""docs/howto/serve.md against a live ``serve --demo`` server: its tree, its sample, /ready."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.docs import DOCS, code_blocks, section
from tests.http.conftest import ServerFactory
from triotok._tree_command import render_tree

SERVE = DOCS / "howto" / "serve.md"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The tree does not depend on the backend: SQLite only."""
    return f"sqlite:///{tmp_path}/triotok.db"


def _paths(node: dict[str, Any]) -> Iterator[str]:
    yield node["path"]
    for child in node["children"]:
        yield from _paths(child)


def _block(marker: str) -> str:
    [block] = [b for b in code_blocks(SERVE, "") if marker in b]
    return block


async def test_the_trees_in_serve_md_are_the_demo_tree(make_server: ServerFactory) -> None:
    drawn = _block("root supervisor").splitlines()
    sample = _block("├──").splitlines()
    with trio.fail_after(20):
        async with make_server(demo=True) as server:
            tree = server.app.system.tree()
    assert [line.split()[0] for line in drawn] == list(_paths(tree))
    rendered = render_tree(tree).splitlines()
    # The same lines, up to the numbers (counters vary with traffic).
    assert [re.sub(r"\d+", "N", line) for line in sample] == [
        re.sub(r"\d+", "N", line) for line in rendered
    ]


async def test_ready_checks_what_serve_md_says(make_server: ServerFactory) -> None:
    health = section(SERVE, "Health checks")
    [ready] = [" ".join(i.split()) for i in health.split("\n* ") if i.startswith("`GET /ready`")]
    claimed = re.findall(r"`(/app[\w/]*)`", ready.split("Only these")[0])
    with trio.fail_after(20):
        async with make_server() as server:
            checked = ["/app", *server.services.required]
            detail = (await server.client.get("/health")).json()["subsystems"]["tree"]
    assert claimed == checked
    assert detail == {"status": "up", "root": "running", "not_running": []}
    assert "ping within 1 s" in ready
