"""One SQL dialect: ``$n`` placeholders rewritten for SQLite, literals untouched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from triotok.store._sql import adapt_sqlite_params, format_timestamp, parse_timestamp, to_sqlite


def test_placeholders_become_numbered_sqlite_parameters() -> None:
    assert to_sqlite("SELECT $1, $2, $1") == "SELECT ?1, ?2, ?1"
    assert to_sqlite("WHERE a = $10") == "WHERE a = ?10"


def test_literals_identifiers_and_comments_are_not_rewritten() -> None:
    sql = """SELECT '$1', 'it''s $2', "col$3" -- $4\n, $5 /* $6 */"""
    assert to_sqlite(sql) == """SELECT '$1', 'it''s $2', "col$3" -- $4\n, ?5 /* $6 */"""


def test_timestamps_are_fixed_width_utc_text_that_sorts() -> None:
    paris = timezone(timedelta(hours=1))
    a = datetime(2024, 1, 1, 12, 0, tzinfo=paris)
    b = datetime(2024, 1, 1, 11, 30, 0, 1, tzinfo=UTC)
    assert format_timestamp(a) == "2024-01-01T11:00:00.000000+00:00"
    assert format_timestamp(a) < format_timestamp(b)
    assert parse_timestamp(format_timestamp(b)) == b
    assert parse_timestamp(b"2024-01-01T11:00:00.123+00:00") == datetime(
        2024, 1, 1, 11, 0, 0, 123000, tzinfo=UTC
    )
    naive = datetime(2024, 1, 1)
    assert format_timestamp(naive) == "2024-01-01T00:00:00.000000+00:00"


def test_params_sqlite_cannot_bind_are_adapted() -> None:
    u = uuid.uuid4()
    assert adapt_sqlite_params([u, 1, b"x", None]) == (str(u), 1, b"x", None)
