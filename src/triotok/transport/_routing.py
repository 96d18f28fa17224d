"""Sans-I/O routing rules of the event bus: patterns, ordering keys, lanes and group members.

Nothing here awaits or touches trio; the bus calls these per event.

- A *pattern* is an fnmatch-style event-type pattern (``"product.*"``,
  ``"*"``, ``"order.paid"``); ``*`` also matches dots, so ``"product.*"``
  matches ``"product.variant.created"``.
- The *ordering key* of an envelope is ``(tenant_id, aggregate)``; events with
  equal keys are handed to each subscriber in order. ``aggregate`` is the
  payload's ``key`` attribute, else its ``aggregate_id`` attribute, else the
  envelope's correlation id.
- The key's CRC-32 picks the lane of a subscription and, by rendezvous
  hashing, the member of a group, so one key always reaches the same member
  while the membership is the same (and only the keys of a member that
  leaves move).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import TypeVar

from .._exceptions import InvalidConfig
from ._envelope import Envelope

__all__ = ("key_hash", "matches", "ordering_key", "pick_member", "validate_pattern")

T = TypeVar("T")

# Event types are dotted lowercase names (see _registry.py); a pattern is one
# with ``*`` / ``?`` wildcards. Brackets are refused: they add nothing for
# dotted names and make typos ("order.[paid") silently match nothing.
_PATTERN = re.compile(r"[a-z0-9_.*?]{1,200}")


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a valid event-type pattern, else raise InvalidConfig.

    >>> validate_pattern("product.*")
    'product.*'
    """
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        raise InvalidConfig(
            "pattern", f"{pattern!r} is not an event-type pattern ([a-z0-9_.*?], 1 to 200 long)"
        )
    if pattern.startswith(".") or pattern.endswith(".") or ".." in pattern:
        raise InvalidConfig("pattern", f"{pattern!r} has an empty dotted segment")
    return pattern


def matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` matches ``pattern`` (case-sensitive fnmatch)."""
    return pattern == "*" or fnmatchcase(event_type, pattern)


def ordering_key(envelope: Envelope) -> tuple[str | None, str]:
    """``(tenant_id, aggregate)``: events with equal keys keep their order per subscriber."""
    payload = envelope.payload
    aggregate = getattr(payload, "key", None)
    if aggregate is None:
        aggregate = getattr(payload, "aggregate_id", None)
    if aggregate is None:
        return envelope.tenant_id, str(envelope.correlation_id)
    return envelope.tenant_id, str(aggregate)


def key_hash(envelope: Envelope) -> int:
    """A process-independent 32-bit hash of the ordering key."""
    tenant, aggregate = ordering_key(envelope)
    # \x1f (unit separator) cannot occur in tenant ids, so keys cannot collide by concatenation.
    return zlib.crc32(f"{tenant or ''}\x1f{aggregate}".encode("utf-8", "surrogatepass"))


def pick_member(members: Sequence[T], names: Sequence[str], hashed: int) -> T:
    """The member with the highest rendezvous weight for ``hashed`` (``names`` parallel).

    Deterministic across processes; adding or removing one member only moves
    the keys that member wins or held.
    """
    if len(members) == 1:
        return members[0]
    salt = hashed.to_bytes(4, "big")
    best = max(range(len(members)), key=lambda i: (zlib.crc32(salt + names[i].encode()), i))
    return members[best]
