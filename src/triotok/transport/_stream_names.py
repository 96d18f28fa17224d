"""Sans-I/O parts of the L2 stream: settings, subjects, filters, consumer names, state snapshots.

Nothing here touches the network; :mod:`._jetstream` applies these.

- An event travels on subject ``<prefix>.<tenant>.<event_type>`` (``_`` for
  an event without a tenant): tenant ids (``[A-Za-z0-9_-]``) and the dotted
  lower-case event types are valid subject tokens as they are.
- A bus pattern (fnmatch, ``*`` also matching dots) becomes the narrowest
  NATS filter that still holds every event it matches: its literal dotted
  segments, then ``>`` from the first segment with a wildcard. The consumer
  checks the pattern itself on each message, so the filter may be wider.
- A consumer group's durable consumer is named after the group and a CRC of
  its pattern (one group may subscribe several patterns); its metadata keeps
  both, which is how ``events replay --group`` finds them.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from .._exceptions import InvalidConfig
from .._util import positive_int, seconds

__all__ = (
    "ConsumerState",
    "JetStreamConfig",
    "StreamState",
    "consumer_name",
    "filter_subject",
    "parse_events_url",
    "subject_for",
)

_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")
StartPolicy = Literal["new", "all"]


def parse_events_url(url: object) -> str | None:
    """``None`` for L1 (``""`` or ``"outbox"``); a ``nats://host:port`` URL as given."""
    if url is None or url in ("", "outbox"):
        return None
    if not isinstance(url, str):
        raise InvalidConfig("events_url", f"must be a string, got {url!r}")
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise InvalidConfig(
                "events_url", f"{one!r}: expected 'outbox' or nats://host:port[,nats://...]"
            )
        try:
            parts.port  # noqa: B018  # raises ValueError for a bad port
        except ValueError:
            raise InvalidConfig("events_url", f"{one!r}: invalid port") from None
    return url


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """How to reach the stream and what it keeps.

    ``url``: one or more ``nats://host:port`` (comma-separated). ``stream``
    and ``subject_prefix`` name the stream and its subjects. Retention:
    ``max_age`` (``None``: forever), ``max_bytes`` and ``max_msgs`` (``-1``:
    unlimited); the oldest events go first. ``duplicate_window``: how long
    the server remembers event ids to drop a republished one (it must exceed
    the longest a relay can take between publishing and marking a row).
    Consumers: ``ack_wait`` seconds before an unacknowledged event is sent
    again (in-flight handling sends progress before that), ``max_ack_pending``
    events in flight per group, ``fetch_batch`` per pull, and where a group
    that does not exist yet starts (``new_group_start``: ``"new"`` events
    only, ``"all"`` from the first event kept). ``max_redeliveries``: an
    event delivered that many times without being handled or dead-lettered
    (a node crashing on it each time) is dead-lettered.
    """

    url: str
    stream: str = "TRIOTOK"
    subject_prefix: str = "triotok"
    max_age: timedelta | None = timedelta(days=7)
    max_bytes: int = -1
    max_msgs: int = -1
    duplicate_window: float = 120.0
    replicas: int = 1
    ack_wait: float = 30.0
    max_ack_pending: int = 1000
    fetch_batch: int = 100
    new_group_start: StartPolicy = "new"
    max_redeliveries: int = 20
    connect_timeout: float = 2.0
    publish_timeout: float = 5.0

    def __post_init__(self) -> None:
        if parse_events_url(self.url) is None:
            raise InvalidConfig("url", "a JetStreamConfig needs a nats:// URL")
        if not _STREAM_NAME.fullmatch(self.stream):
            raise InvalidConfig("stream", f"{self.stream!r} must match [A-Za-z0-9_-]{{1,64}}")
        if not _PREFIX.fullmatch(self.subject_prefix):
            raise InvalidConfig("subject_prefix", f"{self.subject_prefix!r}: [A-Za-z0-9_-]{{1,32}}")
        if self.max_age is not None and (
            not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0)
        ):
            raise InvalidConfig(
                "max_age", f"must be a positive timedelta or None: {self.max_age!r}"
            )
        for name in ("max_bytes", "max_msgs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
                raise InvalidConfig(
                    name, f"must be a positive int or -1 (unlimited), got {value!r}"
                )
        for name in ("duplicate_window", "ack_wait", "connect_timeout", "publish_timeout"):
            seconds(name, getattr(self, name), allow_zero=False)
        for name in ("replicas", "max_ack_pending", "fetch_batch", "max_redeliveries"):
            positive_int(name, getattr(self, name))
        if self.new_group_start not in ("new", "all"):
            raise InvalidConfig("new_group_start", f"'new' or 'all', got {self.new_group_start!r}")


def subject_for(prefix: str, tenant_id: str | None, event_type: str) -> str:
    """``triotok.acme.product.created``; ``triotok._.system.started`` without a tenant."""
    return f"{prefix}.{tenant_id or '_'}.{event_type}"


def filter_subject(prefix: str, pattern: str) -> str:
    """The narrowest subject filter holding every event type ``pattern`` matches.

    >>> filter_subject("triotok", "product.created")
    'triotok.*.product.created'
    >>> filter_subject("triotok", "product.*")
    'triotok.*.product.>'
    >>> filter_subject("triotok", "*")
    'triotok.>'
    """
    literal: list[str] = []
    for segment in pattern.split("."):
        if "*" in segment or "?" in segment:
            return ".".join([prefix, "*", *literal, ">"]) if literal else f"{prefix}.>"
        literal.append(segment)
    return ".".join([prefix, "*", *literal])


def consumer_name(group: str, pattern: str) -> str:
    """The durable consumer of ``group`` for ``pattern`` (stable across processes)."""
    crc = zlib.crc32(f"{group}\x1f{pattern}".encode())
    return f"{group.replace('.', '_')[:100]}-{crc:08x}"


@dataclass(frozen=True, slots=True)
class StreamState:
    """The stream as the server reported it."""

    name: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: int
    max_age_seconds: float | None
    max_bytes: int
    max_msgs: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """One durable consumer as the server reported it.

    ``pending``: events of its filter not yet delivered to it; ``ack_pending``:
    delivered, not yet acknowledged; ``lag`` is their sum, the events the
    group still owes. ``ack_floor`` is the stream sequence below which
    everything is acknowledged.
    """

    name: str
    group: str | None
    pattern: str | None
    filter_subject: str | None
    delivered_seq: int
    ack_floor: int
    pending: int
    ack_pending: int
    redelivered: int
    waiting: int

    @property
    def lag(self) -> int:
        return self.pending + self.ack_pending

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lag": self.lag}
