"""What text must be to be stored and shown: the rules every layer shares.

* Stored text is UTF-8: a string holding a lone surrogate (``"\\ud800"`` in
  JSON, or bytes that are not UTF-8 in a query string or header) cannot be
  stored or sent, so it is refused where it enters, naming the field.
* U+0000 is refused in stored text too: PostgreSQL cannot store it in
  ``text`` or ``jsonb``.
* Names and identifiers shown to people (tenant names, and the pages and
  audit log that show them) hold no control or invisible format characters
  (Unicode categories Cc and Cf: bidi overrides such as U+202E, zero-width
  spaces, the BOM, tag characters), so what is shown is what is stored.

A leaf module: it imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import re
import sys
import unicodedata

__all__ = ("NAME_PATTERN", "text_error", "whole_match", "without_surrogates")


def _invisible_ranges() -> str:
    # Literal characters, not escapes: the pattern reads the same to Python's re
    # and, through /openapi.json, to an ECMA-262 engine.
    ranges: list[str] = []
    start = previous = -2
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) not in ("Cc", "Cf"):
            continue
        if code != previous + 1:
            if start >= 0:
                ranges.append(_range(start, previous))
            start = code
        previous = code
    ranges.append(_range(start, previous))
    return "".join(ranges)


def _range(first: int, last: int) -> str:
    return chr(first) if first == last else f"{chr(first)}-{chr(last)}"


def whole_match(pattern: str) -> str:
    """A ``pattern`` matching whole strings of ``pattern`` only, read alike by both dialects.

    JSON Schema (ECMA-262) and msgspec (Python's ``re.search``) both search;
    ``^...$`` anchors them, but Python's ``$`` also matches before a final
    newline, so ``"abc\\n"`` would pass ``^[a-z]+$``. The lookahead refuses that
    newline in Python and changes nothing in ECMA-262, where ``$`` is the end.
    """
    return f"^(?:{pattern})$(?!\\n)"


#: JSON Schema ``pattern`` of a display name: no Cc/Cf character anywhere.
NAME_PATTERN = whole_match(f"[^{_invisible_ranges()}]*")

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_error(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None`` if it can."""
    if _SURROGATE.search(value) is not None:
        return "is not valid UTF-8 text (a lone surrogate)"
    if "\x00" in value:
        return "contains U+0000, which cannot be stored"
    return None


def without_surrogates(value: str) -> str:
    """``value`` with each lone surrogate replaced by U+FFFD (safe to echo in a message)."""
    return _SURROGATE.sub("\ufffd", value)
