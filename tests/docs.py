"""Reading the documentation in tests: its code blocks and sections, so tests can hold it true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(path: Path, lang: str | None = None) -> list[str]:
    """The fenced code blocks of a Markdown file (only those tagged ``lang`` when given)."""
    return [
        m["body"] for m in _FENCE.finditer(path.read_text()) if lang is None or m["lang"] == lang
    ]


def section(path: Path, heading: str) -> str:
    """The text under ``## heading`` (up to the next heading of that level or above)."""
    text = path.read_text()
    start = text.index(f"\n## {heading}\n")
    end = re.compile(r"^#{1,2} ", re.MULTILINE).search(text, start + 1 + len(heading) + 4)
    return text[start : end.start() if end else len(text)]
