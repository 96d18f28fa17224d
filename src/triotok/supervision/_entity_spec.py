"""The specification of an entities region, entity names, and the optimistic-concurrency check.

The engine is ``_entities.py``; this module holds what a user writes down.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import ConflictError, InvalidConfig
from ..actors import Mailbox
from ._passivation import PassivationPolicy
from ._spec import Strategy, SupervisorSpec

if TYPE_CHECKING:
    from ..actors import Actor
    from ..actors.lowlevel import Node, Runtime
    from ._entities import EntitiesNode

__all__ = ("Entities", "check_version", "entity_name")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entities(SupervisorSpec):
    """A region of entity actors: ``factory(key)`` builds the entity of ``key``.

    ::

        spec = Entities("counters", factory=lambda key: Counter(key, store),
                        idle=120.0, max_active=10_000, intensity=3, period=5.0)
        region = await system.spawn_entities(spec)
        total = await region.ask(("acme", "c1"), Add(5), timeout=5.0)

    ``idle``: seconds without a command before an entity is passivated.
    ``max_active``: active entities beyond which the least recently used idle
    ones are passivated.  ``intensity``/``period``: more than ``intensity``
    crashes of one entity within ``period`` seconds poison its key.
    ``mailbox``: each entity's mailbox.  ``name_of(key)`` gives the entity's
    path segment (default :func:`entity_name`).
    """

    factory: Callable[[Any], Actor]
    idle: float = 120.0
    max_active: int = 10_000
    mailbox: Mailbox = field(default_factory=Mailbox)
    name_of: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        SupervisorSpec.__post_init__(self)
        if self.children:
            raise InvalidConfig("children", "an entities region has no static children")
        if self.strategy is not Strategy.ONE_FOR_ONE:
            raise InvalidConfig("strategy", "entities restart one for one")
        if self.backoff is not None:
            raise InvalidConfig("backoff", "entities restart at once; use intensity/period")
        if not callable(self.factory):
            raise InvalidConfig("factory", f"must be callable, got {self.factory!r}")
        # Validates idle (finite, positive; nan/inf refused) and max_active.
        PassivationPolicy(idle=self.idle, max_active=self.max_active)
        if not isinstance(self.mailbox, Mailbox):
            raise InvalidConfig("mailbox", f"must be a Mailbox, got {self.mailbox!r}")
        if self.name_of is not None and not callable(self.name_of):
            raise InvalidConfig("name_of", f"must be callable, got {self.name_of!r}")

    def make_node(self, runtime: Runtime, path: str, parent: Node | None) -> EntitiesNode:
        """The supervisor builds a region node from this spec (see ``_make_child``)."""
        from ._entities import EntitiesNode  # the engine imports this spec

        return EntitiesNode(runtime, path, parent, self)


_PLAIN = re.compile(r"[A-Za-z0-9\-]+")


def entity_name(key: Hashable) -> str:
    """The default path segment of an entity key.

    Tuple parts are joined with ``.``; in each part every character outside
    ``[A-Za-z0-9-]`` becomes ``_xx`` (its UTF-8 bytes in hex), so distinct
    tuples of strings get distinct names, all valid path segments (a
    one-element tuple shares its element's name, and ``1`` shares ``"1"``'s:
    a region refuses to activate two such keys at once).  Names past 128
    characters are shortened with a digest.

    >>> entity_name(("acme", "0f8c-41"))
    'acme.0f8c-41'
    >>> entity_name("a b")
    'a_20b'
    """
    parts = key if isinstance(key, tuple) else (key,)
    name = ".".join(_escape(str(part)) for part in parts) or "_"
    if len(name) > 128:
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
        name = f"{name[:100]}.{digest}"
    return name


def _escape(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text
    return "".join(
        c if _PLAIN.fullmatch(c) else "".join(f"_{b:02x}" for b in c.encode()) for c in text
    )


def check_version(updated: int, *, expected: int, key: object = None) -> None:
    """The optimistic-concurrency check after ``UPDATE ... WHERE version = $expected``.

    Raises :class:`ConflictError` unless exactly one row was updated; raised
    from an entity's handler it makes the region reload the entity and retry
    the command once (see :class:`Entities`)::

        updated = await tx.execute(
            "UPDATE nodes SET title = $1, version = version + 1 "
            "WHERE tenant_id = $2 AND id = $3 AND version = $4",
            title, tenant, node_id, self.version)
        check_version(updated, expected=self.version, key=self.key)
        self.version += 1
    """
    if updated != 1:
        raise ConflictError(f"{key!r}: version {expected} is no longer current")
