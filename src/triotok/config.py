"""Settings of a TrioToK server: defaults < TOML file < ``TRIOTOK_*`` env vars < flags.

Every setting is declared once in :data:`FIELDS` (its type, default, TOML
section and key, environment variable, help text); loading, validation and
``triotok serve --help`` come from that declaration, and tests/test_docs.py
holds the table in docs/howto/serve.md to it, so they cannot drift apart.
Every problem surfaces at start as :class:`~triotok.InvalidConfig` naming the
field and where its value came from.

::

    settings = load_settings(config_file="triotok.toml", env=os.environ, flags={"port": 9000})
    settings.port  # 9000: flags win over the file and the environment

A TOML file groups the settings in sections::

    [server]
    host = "127.0.0.1"
    port = 8000
    workers = 2

    [store]
    url = "sqlite:///triotok-data/triotok.db"

    [http]
    rate_limit_per_ip = 100        # requests per minute
    max_body_bytes = 1048576

    [traces]
    exporter = "otlp"              # off, otlp, console
    sample_ratio = 0.1

    [metrics]
    port = 9464                    # /metrics without a key, on 127.0.0.1
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._exceptions import InvalidConfig
from ._util import DEFAULT_STORE_URL, TENANT_ID_PATTERN

__all__ = ("ENV_PREFIX", "FIELDS", "Field", "Settings", "load_settings")

ENV_PREFIX = "TRIOTOK_"

#: ``TRIOTOK_*`` variables read by the client commands (``triotok tree``), not the server:
#: an operator's shell may export them, so the server skips them instead of refusing them.
CLIENT_ENV = frozenset({"TRIOTOK_API_KEY", "TRIOTOK_URL"})

_TENANT_ID = re.compile(TENANT_ID_PATTERN)
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings of one server process (see :data:`FIELDS` for each one)."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    graceful_timeout: float = 10.0
    log_level: str = "info"
    access_log: bool = False
    store_url: str = DEFAULT_STORE_URL
    max_body_bytes: int = 1_048_576
    rate_limit_per_ip: int = 100
    rate_limit_per_key: int = 600
    trust_proxy: bool = False
    trusted_proxy_hops: int = 1
    operator_tenant: str = "ops"
    tenant_cache_ttl: float = 30.0
    tenant_negative_ttl: float = 5.0
    demo: bool = False
    max_connections: int = 1000
    keep_alive_timeout: float = 5.0
    body_timeout: float = 30.0
    durable_bus_dead_letters: bool = False
    search_consistency_wait: float = 2.0
    search_max_lag: float = 30.0
    search_text_configs: str = ""
    search_page_cache_ttl: float = 0.5
    relay: bool = True
    log_format: str = "auto"
    tracing: str = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    trace_sample_ratio: float = 1.0
    service_name: str = "triotok"
    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    store_down_mode: str = "read_only"
    stale_max_age: float = 3600.0
    plugins_dir: str = ""
    # L2 (NATS JetStream); "" keeps L1, the transactional outbox alone.
    events_url: str = ""
    events_stream: str = "TRIOTOK"
    events_max_age: float = 604_800.0
    events_max_bytes: int = -1
    events_new_group_start: str = "new"
    # The orders module's payment provider (per-tenant routes: docs/reference/payments.md).
    payments_provider: str = "manual"
    payments_url: str = ""
    payments_timeout: float = 5.0
    idempotency_lease: float = 60.0

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return load_settings(flags={**dataclasses.asdict(self), **changes})


@dataclass(frozen=True, slots=True)
class Field:
    """The declaration of one setting."""

    name: str
    type: type
    section: str
    key: str
    help: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def default(self) -> Any:
        return Settings.__dataclass_fields__[self.name].default


FIELDS: tuple[Field, ...] = (
    Field("host", str, "server", "host", "address to listen on"),
    Field("port", int, "server", "port", "TCP port (0: any free port)", 0, 65535),
    Field("workers", int, "server", "workers", "processes serving the port (SO_REUSEPORT)", 1, 64),
    Field(
        "graceful_timeout",
        float,
        "server",
        "graceful_timeout",
        "seconds in-flight requests get to finish on shutdown",
        0,
        3600,
    ),
    Field("log_level", str, "server", "log_level", "one of " + ", ".join(_LOG_LEVELS)),
    Field("access_log", bool, "server", "access_log", "log every request to stderr"),
    Field("store_url", str, "store", "url", "sqlite:///path.db or postgresql://user@host/db"),
    Field("max_body_bytes", int, "http", "max_body_bytes", "largest request body (413)", 1),
    Field("rate_limit_per_ip", int, "http", "rate_limit_per_ip", "requests/minute per IP", 1),
    Field("rate_limit_per_key", int, "http", "rate_limit_per_key", "requests/minute per key", 1),
    Field("trust_proxy", bool, "http", "trust_proxy", "take the client IP from X-Forwarded-For"),
    Field(
        "trusted_proxy_hops",
        int,
        "http",
        "trusted_proxy_hops",
        "trusted proxies in front: the client is that many hops from the right",
        1,
        16,
    ),
    Field("operator_tenant", str, "tenants", "operator_tenant", "tenant whose admins operate"),
    Field("tenant_cache_ttl", float, "tenants", "cache_ttl", "seconds a tenant stays cached", 0),
    Field(
        "tenant_negative_ttl",
        float,
        "tenants",
        "negative_ttl",
        "seconds an unknown tenant stays cached",
        0,
    ),
    Field("demo", bool, "server", "demo", "create a demo tenant and API keys at start"),
    Field(
        "max_connections",
        int,
        "server",
        "max_connections",
        "open connections per process; more are refused with 503",
        1,
    ),
    Field(
        "keep_alive_timeout",
        float,
        "http",
        "keep_alive_timeout",
        "seconds an idle connection, or an incomplete request head, is kept",
        0,
        3600,
    ),
    Field(
        "body_timeout",
        float,
        "http",
        "body_timeout",
        "seconds a request body may take to arrive (408)",
        0,
        3600,
    ),
    Field(
        "durable_bus_dead_letters",
        bool,
        "events",
        "durable_bus_dead_letters",
        "keep the bus's dead letters in the store, not in memory",
    ),
    Field(
        "search_consistency_wait",
        float,
        "search",
        "consistency_wait",
        "longest seconds a list or search with min_token waits for the index",
        0,
        60,
    ),
    Field(
        "search_max_lag",
        float,
        "search",
        "max_lag_seconds",
        "index lag in seconds above which /health reports search degraded",
        0,
        86400,
    ),
    Field(
        "search_text_configs",
        str,
        "search",
        "text_configs",
        "PostgreSQL text search configs: en=english,de=german (* the default)",
    ),
    Field(
        "search_page_cache_ttl",
        float,
        "search",
        "page_cache_ttl",
        "seconds a node reuses a list or search answer (0: never)",
        0,
        60,
    ),
    Field(
        "relay",
        bool,
        "events",
        "relay",
        "deliver outbox events from this node (false: other nodes do)",
    ),
    Field("log_format", str, "server", "log_format", "auto (json unless a terminal), json, text"),
    Field("tracing", str, "traces", "exporter", "trace exporter: off, otlp (HTTP), console"),
    Field("otlp_endpoint", str, "traces", "otlp", "OTLP/HTTP traces URL"),
    Field(
        "trace_sample_ratio",
        float,
        "traces",
        "sample_ratio",
        "share of new traces sampled (parent-based: a sampled caller's always are)",
        0,
        1,
    ),
    Field("service_name", str, "traces", "service_name", "service.name of the spans"),
    Field("metrics", bool, "metrics", "enabled", "serve Prometheus metrics at /metrics"),
    Field("metrics_host", str, "metrics", "host", "address of the metrics listener"),
    Field(
        "metrics_port",
        int,
        "metrics",
        "port",
        "a separate /metrics listener needing no key (0: none)",
        0,
        65535,
    ),
    Field(
        "store_down_mode",
        str,
        "modes",
        "store_down",
        "service mode while the store cannot be read: read_only or offline",
    ),
    Field(
        "stale_max_age",
        float,
        "modes",
        "stale_max_age",
        "seconds a read's last good answer may be served while the store is down",
        0,
    ),
    Field("plugins_dir", str, "plugins", "dir", "a directory of plugins to discover (empty: none)"),
    # ---- L2 event stream (docs/howto/jetstream.md)
    Field(
        "events_url",
        str,
        "events",
        "url",
        "nats://host:port of NATS JetStream (the L2 event stream); empty: L1 only",
    ),
    Field("events_stream", str, "events", "stream", "name of the JetStream stream"),
    Field(
        "events_max_age",
        float,
        "events",
        "max_age",
        "seconds the stream keeps an event (0: no age limit)",
        0,
    ),
    Field(
        "events_max_bytes",
        int,
        "events",
        "max_bytes",
        "bytes the stream keeps, oldest dropped first (-1: no size limit)",
        -1,
    ),
    Field(
        "events_new_group_start",
        str,
        "events",
        "new_group_start",
        "where a group new to the stream starts: new (from now) or all",
    ),
    Field(
        "idempotency_lease",
        float,
        "http",
        "idempotency_lease",
        "seconds until a retry takes over a dead node's Idempotency-Key claim",
        1,
        3600,
    ),
    # ---- payments (docs/reference/payments.md)
    Field("payments_provider", str, "payments", "provider", "payment provider: manual or http"),
    Field("payments_url", str, "payments", "url", "base URL of the http payment provider"),
    Field(
        "payments_timeout",
        float,
        "payments",
        "timeout",
        "seconds a payment-provider call may take",
        0,
        300,
    ),
)

_BY_NAME = {f.name: f for f in FIELDS}
_BY_SECTION: dict[str, dict[str, Field]] = {}
for _f in FIELDS:
    _BY_SECTION.setdefault(_f.section, {})[_f.key] = _f


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers (defaults < file < env < flags) and validate the result.

    ``env`` is usually ``os.environ``; only ``TRIOTOK_*`` names are read, and
    an unknown ``TRIOTOK_*`` name is an error (a typo must not be ignored).
    ``flags`` maps field names to values; ``None`` values mean "not given".
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_toml(Path(config_file)))
    if env is not None:
        values.update(_read_env(env))
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name not in _BY_NAME:
            raise InvalidConfig(name, "unknown setting")
        values[name] = _coerce(_BY_NAME[name], value, "flag")
    settings = Settings(**values)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidConfig("config", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig("config", f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig("config", f"{path}: invalid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in raw.items():
        known = _BY_SECTION.get(section)
        if known is None or not isinstance(table, dict):
            sections = ", ".join(f"[{s}]" for s in _BY_SECTION)
            raise InvalidConfig(section, f"{path}: unknown section; known: {sections}")
        for key, value in table.items():
            field = known.get(key)
            if field is None:
                keys = ", ".join(known)
                raise InvalidConfig(f"{section}.{key}", f"{path}: unknown key; known: {keys}")
            values[field.name] = _coerce(field, value, f"{path} [{section}] {key}")
    return values


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in CLIENT_ENV:
            continue
        field = _BY_NAME.get(name[len(ENV_PREFIX) :].lower())
        if field is None:
            raise InvalidConfig(name, "unknown TRIOTOK_* environment variable")
        values[field.name] = _coerce(field, raw, f"environment {name}")
    return values


def _coerce(field: Field, value: Any, origin: str) -> Any:
    """Turn a TOML value, an env string or a flag into the field's type."""
    kind = field.type
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            if isinstance(value, bool | float):
                raise ValueError("expected an integer")
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(field.name, f"{value!r} from {origin}: {exc}") from None


def _validate(settings: Settings) -> None:
    for field in FIELDS:
        value = getattr(settings, field.name)
        if field.minimum is not None and value < field.minimum:
            raise InvalidConfig(field.name, f"must be >= {field.minimum:g}, got {value!r}")
        if field.maximum is not None and value > field.maximum:
            raise InvalidConfig(field.name, f"must be <= {field.maximum:g}, got {value!r}")
    from .telemetry import EXPORTERS, LOG_FORMATS

    if settings.log_format not in LOG_FORMATS:
        raise InvalidConfig(
            "log_format", f"{settings.log_format!r}; one of {', '.join(LOG_FORMATS)}"
        )
    if settings.tracing not in EXPORTERS:
        raise InvalidConfig("tracing", f"{settings.tracing!r}; one of {', '.join(EXPORTERS)}")
    if not settings.otlp_endpoint.startswith(("http://", "https://")):
        raise InvalidConfig("otlp_endpoint", f"{settings.otlp_endpoint!r} is not an http(s) URL")
    if not settings.service_name:
        raise InvalidConfig("service_name", "must not be empty")
    for name in ("host", "metrics_host"):
        _check_host(name, getattr(settings, name))
    if settings.metrics_port and not settings.metrics:
        raise InvalidConfig("metrics_port", "set, but metrics are off")
    if settings.metrics_port and settings.metrics_port == settings.port:
        raise InvalidConfig("metrics_port", "must differ from port")
    if settings.log_level not in _LOG_LEVELS:
        raise InvalidConfig("log_level", f"{settings.log_level!r}; one of {', '.join(_LOG_LEVELS)}")
    if not _TENANT_ID.fullmatch(settings.operator_tenant):
        raise InvalidConfig("operator_tenant", "must match [A-Za-z0-9_-]{1,64}")
    if settings.tenant_cache_ttl <= 0:
        raise InvalidConfig("tenant_cache_ttl", "must be > 0")
    for name in ("keep_alive_timeout", "body_timeout"):
        if getattr(settings, name) <= 0:
            raise InvalidConfig(name, "must be > 0")
    if settings.store_down_mode not in ("read_only", "offline"):
        raise InvalidConfig("store_down_mode", "must be read_only or offline")
    if settings.workers > 1 and settings.port == 0:
        raise InvalidConfig("workers", "several workers need a fixed port (not 0)")
    from .store import parse_store_url

    parse_store_url(settings.store_url)
    _validate_events(settings)
    _validate_payments(settings)


def _validate_payments(settings: Settings) -> None:
    if settings.payments_provider not in ("manual", "http"):
        raise InvalidConfig(
            "payments_provider", f"{settings.payments_provider!r}; one of manual, http"
        )
    if settings.payments_provider == "http" and not settings.payments_url:
        raise InvalidConfig("payments_url", "required when payments_provider is http")
    if settings.payments_url and not settings.payments_url.startswith(("http://", "https://")):
        raise InvalidConfig("payments_url", f"{settings.payments_url!r} is not an http(s) URL")
    if settings.payments_timeout <= 0:
        raise InvalidConfig("payments_timeout", "must be > 0")


def _check_host(name: str, host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise InvalidConfig(name, f"{host!r} is not an IP address (or 'localhost')") from None


def _validate_events(settings: Settings) -> None:
    from .transport import parse_events_url

    url = parse_events_url(settings.events_url)
    if url is not None:
        jetstream_config(settings)  # every stream setting checked at start


def jetstream_config(settings: Settings) -> Any:
    """The :class:`~triotok.transport.JetStreamConfig` of ``settings`` (L2 configured)."""
    from datetime import timedelta

    from .transport import JetStreamConfig

    if settings.events_max_bytes == 0:
        raise InvalidConfig("events_max_bytes", "must be -1 (no limit) or > 0")
    try:
        return JetStreamConfig(
            settings.events_url,
            stream=settings.events_stream,
            max_age=timedelta(seconds=settings.events_max_age) if settings.events_max_age else None,
            max_bytes=settings.events_max_bytes,
            new_group_start=settings.events_new_group_start,  # type: ignore[arg-type]  # checked
        )
    except InvalidConfig as exc:  # named after the setting, not the constructor's argument
        name = exc.field if exc.field.startswith("events_") else f"events_{exc.field}"
        raise InvalidConfig(name, exc.reason) from None
