"""One SQL dialect for both backends.

Queries are written with PostgreSQL's numbered placeholders (``$1``, ``$2``,
...) and always parameterised. SQLite understands numbered parameters as
``?1``, ``?2``, so translation is a token rewrite that skips string literals,
quoted identifiers and comments (a ``$1`` inside ``'...'`` stays text).
Translations are cached: the same query text is translated once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

__all__ = ("adapt_sqlite_params", "format_timestamp", "parse_timestamp", "to_sqlite")

# Alternatives, in order: single-quoted literal, double-quoted identifier,
# line comment, block comment, placeholder. Only the last one is rewritten.
_TOKENS = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(/\*.*?\*/)|\$(\d+)""", re.S)


@lru_cache(maxsize=1024)
def to_sqlite(sql: str) -> str:
    """Rewrite ``$n`` placeholders to SQLite's ``?n`` outside literals and comments."""

    def repl(m: re.Match[str]) -> str:
        number = m.group(5)
        return m.group(0) if number is None else f"?{number}"

    return _TOKENS.sub(repl, sql)


def format_timestamp(value: datetime) -> str:
    """Fixed-width ISO-8601 in UTC, so SQLite text timestamps sort chronologically.

    Naive datetimes are taken to be UTC, as asyncpg does for ``timestamptz``.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_timestamp(value: object) -> datetime | None:
    """Inverse of :func:`format_timestamp`; accepts datetimes, text or bytes (SQLite)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise TypeError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def row_timestamp(value: object) -> datetime:
    """A ``NOT NULL`` timestamp column as read from either backend (aware, UTC)."""
    parsed = parse_timestamp(value)
    if parsed is None:
        raise TypeError("a NOT NULL timestamp column held NULL")
    return parsed


def adapt_sqlite_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """Convert parameters sqlite3 cannot bind (or would bind lossily) to text."""
    return tuple(_adapt(p) for p in params)


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
