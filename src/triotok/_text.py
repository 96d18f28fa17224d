"""What text must be to be stored and shown: the rules every layer shares.

* Stored text is UTF-8: a string holding a lone surrogate (``"\\ud800"`` in
  JSON, or bytes that are not UTF-8 in a query string or header) cannot be
  stored or sent, so it is refused where it enters, naming the field.
* U+0000 is refused in stored text too: PostgreSQL cannot store it in
  ``text`` or ``jsonb``.

A leaf module: it imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import re

__all__ = ("text_error", "without_surrogates")


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
