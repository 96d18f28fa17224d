"""Sans-I/O: what the relay does with an outbox row whose delivery failed.

No trio and no store here: given how many times a row has been claimed
(``OutboxRow.attempts``, kept in the database, so it survives relay restarts
and is shared by every node) and the error, :meth:`RetryPolicy.decide` says
"retry after this many seconds" or "dead-letter it now".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .._exceptions import InvalidConfig
from .._util import positive_int
from ..supervision import Backoff, backoff_delay
from ..transport import is_retryable

__all__ = ("DeadLetterReason", "OutboxRetry", "RetryDecision")

#: Why an event left the outbox for the dead-letter table.
DeadLetterReason = Literal["undecodable", "permanent", "max_attempts"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``dead_letter`` is None to retry after ``delay`` seconds, else the reason to give up."""

    delay: float
    dead_letter: DeadLetterReason | None = None


class OutboxRetry:
    """Exponential backoff per row, then the dead-letter table after ``max_attempts``.

    The n-th failed attempt (``attempts == n``) waits
    :func:`~triotok.supervision.backoff_delay` ``(backoff, n - 1)`` seconds (the
    supervisor's restart formula; ``reset_after`` does not apply to rows).  An
    error the event bus would not retry either (:func:`~triotok.transport.is_retryable`:
    a :class:`~triotok.PermanentError`, a ``SchemaError``) dead-letters at once.

    >>> policy = OutboxRetry(Backoff(min=1, max=60, jitter=0), max_attempts=3)
    >>> policy.decide(1, RuntimeError()), policy.decide(3, RuntimeError()).dead_letter
    (RetryDecision(delay=1.0, dead_letter=None), 'max_attempts')
    """

    def __init__(
        self, backoff: Backoff, max_attempts: int, *, rng: random.Random | None = None
    ) -> None:
        if not isinstance(backoff, Backoff):
            raise InvalidConfig("backoff", f"must be a Backoff, got {backoff!r}")
        positive_int("max_attempts", max_attempts)
        self.backoff = backoff
        self.max_attempts = max_attempts
        self._rng = rng or random.Random()

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        return backoff_delay(self.backoff, attempts - 1, self._rng)

    def decide(self, attempts: int, error: BaseException) -> RetryDecision:
        """What to do after attempt number ``attempts`` failed with ``error``."""
        if not is_retryable(error):
            return RetryDecision(0.0, "permanent")
        if attempts >= self.max_attempts:
            return RetryDecision(0.0, "max_attempts")
        return RetryDecision(self.delay(attempts))
