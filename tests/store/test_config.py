"""Store URLs: accepted forms, options, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from triotok._exceptions import InvalidConfig
from triotok.store import (
    DEFAULT_STORE_URL,
    PostgresConfig,
    SqliteConfig,
    open_store,
    parse_store_url,
)


def test_sqlite_relative_and_absolute_paths() -> None:
    assert parse_store_url("sqlite:///data/x.db") == SqliteConfig(Path("data/x.db"))
    assert parse_store_url("sqlite:////tmp/x.db") == SqliteConfig(Path("/tmp/x.db"))
    assert parse_store_url(DEFAULT_STORE_URL) == SqliteConfig(Path("triotok-data/triotok.db"))


def test_sqlite_busy_timeout_from_query_and_keyword() -> None:
    config = parse_store_url("sqlite:///x.db?busy_timeout=2.5")
    assert isinstance(config, SqliteConfig)
    assert config.busy_timeout == 2.5
    config = parse_store_url("sqlite:///x.db?busy_timeout=2.5", busy_timeout=1)
    assert isinstance(config, SqliteConfig)
    assert config.busy_timeout == 1


def test_postgres_options_are_stripped_from_the_dsn() -> None:
    config = parse_store_url(
        "postgres://app:s3cret@db.example:5433/triotok"
        "?pool_size=20&statement_timeout=5&connect_timeout=2&sslmode=disable"
    )
    assert isinstance(config, PostgresConfig)
    assert config.pool_size == 20
    assert config.pool_min_size == 1
    assert config.statement_timeout == 5
    assert config.connect_timeout == 2
    assert config.dsn == "postgresql://app:s3cret@db.example:5433/triotok?sslmode=disable"
    assert "s3cret" not in config.display


def test_keyword_options_win_over_the_url() -> None:
    config = parse_store_url("postgresql://u@h/db?pool_size=3", pool_size=7, pool_min_size=2)
    assert isinstance(config, PostgresConfig)
    assert (config.pool_size, config.pool_min_size) == (7, 2)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "non-empty"),
        ("nothing-here", "no scheme"),
        ("mysql://u@h/db", "unknown scheme 'mysql'"),
        ("sqlite://x.db", "sqlite:///"),
        ("sqlite:///", "no database file"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///x.db?bogus=1", "unknown store option"),
        ("postgresql:///db", "no host"),
        ("postgresql://u@h:notaport/db", "malformed"),
        ("postgresql://u@h/db?pool_size=0", "pool_size"),
        ("postgresql://u@h/db?pool_size=many", "expected an integer"),
        ("postgresql://u@h/db?statement_timeout=-1", "statement_timeout"),
        ("postgresql://u@h/db?pool_size=2&pool_min_size=3", "exceeds pool_size"),
    ],
)
def test_bad_urls_raise_invalid_config(url: str, fragment: str) -> None:
    with pytest.raises(InvalidConfig, match=fragment):
        parse_store_url(url)


async def test_open_store_rejects_a_bad_url_before_touching_anything() -> None:
    with pytest.raises(InvalidConfig, match="unknown scheme"):
        async with open_store("oracle://scott@tiger/db"):
            pass  # pragma: no cover


def test_sqlite_checkpoint_every_is_a_count_of_writes() -> None:
    assert parse_store_url("sqlite:///x.db").checkpoint_every == 200  # type: ignore[union-attr]
    config = parse_store_url("sqlite:///x.db?checkpoint_every=0")
    assert config.checkpoint_every == 0  # type: ignore[union-attr]
    with pytest.raises(InvalidConfig, match="checkpoint_every"):
        parse_store_url("sqlite:///x.db?checkpoint_every=1.5")
    with pytest.raises(InvalidConfig, match="checkpoint_every"):
        parse_store_url("sqlite:///x.db?checkpoint_every=-1")
