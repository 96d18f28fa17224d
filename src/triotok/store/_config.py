"""Store URLs: parse ``sqlite:///...`` and ``postgresql://...`` into validated settings.

Every problem with a URL surfaces here, at start, as :class:`InvalidConfig`
naming the offending part; nothing downstream re-validates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._exceptions import InvalidConfig
from .._util import DEFAULT_STORE_URL, positive_int, seconds

__all__ = ("DEFAULT_STORE_URL", "PostgresConfig", "SqliteConfig", "parse_store_url")


@dataclass(frozen=True)
class SqliteConfig:
    """Settings of the SQLite backend.

    ``path`` is the database file; its directory is created at start.
    ``busy_timeout`` (seconds) bounds how long a writer waits for another
    process holding the write lock before failing with ``StoreUnavailable``.
    ``checkpoint_every`` write jobs, a thread of the store checkpoints the
    WAL (``PASSIVE``), so no commit pays for it; ``0`` leaves it to SQLite,
    in the commit that crosses 1,000 pages.
    """

    path: Path
    busy_timeout: float = 5.0
    checkpoint_every: int = 200

    @property
    def display(self) -> str:
        """The URL as it is safe to log."""
        return f"sqlite:///{self.path}"


@dataclass(frozen=True)
class PostgresConfig:
    """Settings of the PostgreSQL backend.

    ``dsn`` is the libpq-style URL handed to asyncpg with TrioToK's own
    options removed. Timeouts are in seconds; ``statement_timeout`` is set as
    a server setting on every pooled connection (``None``: server default).
    """

    dsn: str
    pool_size: int = 10
    pool_min_size: int = 1
    statement_timeout: float | None = None
    connect_timeout: float = 5.0

    @property
    def display(self) -> str:
        """The DSN with any password masked, for logs and errors."""
        parts = urlsplit(self.dsn)
        if parts.password is None:
            return self.dsn
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


_SQLITE_OPTIONS = {"busy_timeout", "checkpoint_every"}
_PG_OPTIONS = {"pool_size", "pool_min_size", "statement_timeout", "connect_timeout"}


def parse_store_url(url: str, **options: Any) -> SqliteConfig | PostgresConfig:
    """Validate ``url`` (plus keyword ``options``, which win over query parameters).

    ``sqlite:///relative/file.db`` and ``sqlite:////absolute/file.db`` follow
    the SQLAlchemy convention (three slashes, then the path).
    ``postgresql://user:pw@host:port/db?pool_size=10&statement_timeout=5``
    (``postgres://`` also accepted) takes ``pool_size``, ``pool_min_size``,
    ``statement_timeout`` and ``connect_timeout``; any other query parameter
    is passed to asyncpg untouched (e.g. ``sslmode``).
    """
    if not isinstance(url, str) or not url:
        raise InvalidConfig("store url", f"expected a non-empty string, got {url!r}")
    scheme, sep, _ = url.partition(":")
    if not sep:
        raise InvalidConfig("store url", f"{url!r} has no scheme; {_EXPECTED}")
    scheme = scheme.lower()
    if scheme == "sqlite":
        return _parse_sqlite(url, options)
    if scheme in ("postgresql", "postgres"):
        return _parse_postgres(url, options)
    raise InvalidConfig("store url", f"unknown scheme {scheme!r} in {url!r}; {_EXPECTED}")


_EXPECTED = "expected sqlite:///path/to/file.db or postgresql://user@host:port/db"


def _parse_sqlite(url: str, options: dict[str, Any]) -> SqliteConfig:
    if not url.lower().startswith("sqlite:///"):
        raise InvalidConfig(
            "store url", f"{url!r}: write sqlite:///relative.db or sqlite:////abs.db"
        )
    rest = url[len("sqlite:///") :]
    raw_path, _, query = rest.partition("?")
    if not raw_path:
        raise InvalidConfig("store url", f"{url!r} names no database file")
    if raw_path == ":memory:":
        raise InvalidConfig("store url", "in-memory SQLite is not supported; use a file")
    params = _merge(dict(parse_qsl(query, keep_blank_values=True)), options, _SQLITE_OPTIONS)
    busy = _number(params, "busy_timeout", 5.0, allow_zero=True)
    every = _number(params, "checkpoint_every", 200, integer=True, allow_zero=True)
    assert busy is not None  # a default was given
    assert every is not None
    return SqliteConfig(path=Path(raw_path), busy_timeout=busy, checkpoint_every=int(every))


def _parse_postgres(url: str, options: dict[str, Any]) -> PostgresConfig:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidConfig("store url", f"malformed PostgreSQL URL {url!r}: {exc}") from None
    if port == 0:
        raise InvalidConfig("store url", f"malformed PostgreSQL URL {url!r}: port 0")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _PG_OPTIONS}
    passthrough = [(k, v) for k, v in query if k not in _PG_OPTIONS]
    if not parts.hostname and not any(k == "host" for k, _ in passthrough):
        raise InvalidConfig("store url", f"{url!r} names no host (postgresql://user@host:port/db)")
    params = _merge(ours, options, _PG_OPTIONS)
    pool_size = int(_number(params, "pool_size", 10, integer=True) or 10)
    min_default = min(1, pool_size)
    min_size = int(
        _number(params, "pool_min_size", min_default, integer=True, allow_zero=True) or 0
    )
    if min_size > pool_size:
        raise InvalidConfig("pool_min_size", f"{min_size} exceeds pool_size {pool_size}")
    statement_timeout = _number(params, "statement_timeout", None, allow_zero=True)
    connect_timeout = _number(params, "connect_timeout", 5.0, allow_zero=True)
    assert connect_timeout is not None  # a default was given
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(passthrough)))
    return PostgresConfig(
        dsn=dsn,
        pool_size=pool_size,
        pool_min_size=min_size,
        statement_timeout=statement_timeout or None,
        connect_timeout=connect_timeout,
    )


def _merge(query: dict[str, Any], options: dict[str, Any], known: set[str]) -> dict[str, Any]:
    for key in (*query, *options):
        if key not in known:
            raise InvalidConfig(key, f"unknown store option; known: {', '.join(sorted(known))}")
    return {**query, **options}


def _number(
    params: dict[str, Any],
    name: str,
    default: float | None,
    *,
    integer: bool = False,
    allow_zero: bool = False,
) -> float | None:
    """The option ``name`` parsed: a count (``integer``) or a finite number of seconds."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise InvalidConfig(name, f"expected {kind}, got {raw!r}") from None
    if integer:
        return positive_int(name, value, allow_zero=allow_zero)
    return seconds(name, value, allow_zero=allow_zero)
