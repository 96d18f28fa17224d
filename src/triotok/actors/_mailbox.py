"""Mailbox specification: capacity and overflow policy.

The queue itself lives in the actor's cell (``_cell.py``) so that ``tell`` is a
handful of attribute reads and a ``deque.append``; this module only holds the
validated, immutable configuration.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .._exceptions import InvalidConfig
from .._util import positive_int

__all__ = ("Mailbox", "Overflow")


class Overflow(enum.Enum):
    """What happens to a message that arrives at a full mailbox.

    - ``BLOCK``: ``send`` waits for room (backpressure); ``tell`` raises
      :class:`MailboxFull`.
    - ``DROP_NEW``: the arriving message becomes a dead letter.
    - ``DROP_OLD``: the oldest queued message becomes a dead letter and the new
      one is queued.
    - ``FAIL``: ``tell`` and ``send`` raise :class:`MailboxFull`.
    """

    BLOCK = "block"
    DROP_NEW = "drop_new"
    DROP_OLD = "drop_old"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A bounded mailbox: ``Mailbox(capacity=1000, overflow=Overflow.BLOCK)``.

    >>> Mailbox(capacity=10, overflow=Overflow.DROP_OLD).capacity
    10
    """

    capacity: int = 1000
    overflow: Overflow = Overflow.BLOCK

    def __post_init__(self) -> None:
        positive_int("capacity", self.capacity)
        overflow: Any = self.overflow  # checked at run time: callers may pass strings
        if not isinstance(overflow, Overflow):
            try:
                object.__setattr__(self, "overflow", Overflow(overflow))
            except ValueError:
                choices = ", ".join(o.name for o in Overflow)
                raise InvalidConfig(
                    "overflow", f"unknown policy {self.overflow!r}; one of {choices}"
                ) from None
