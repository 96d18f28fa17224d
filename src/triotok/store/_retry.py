"""Sans-I/O: what the relay does with an outbox row whose delivery failed.

The rule is the bus's (:class:`~triotok.resilience.RetryPolicy`); this thin
layer adds what is specific to the outbox: the attempt count is
``OutboxRow.attempts``, kept in the database (so it survives relay restarts
and is shared by every node), the relay's own random source, and a third
reason to dead-letter a row, ``"undecodable"``, which the relay decides before
any delivery.
"""

from __future__ import annotations

import random
from typing import Literal

from .._exceptions import InvalidConfig
from .._util import positive_int
from ..resilience import Backoff, RetryDecision, RetryPolicy

__all__ = ("DeadLetterReason", "OutboxRetry", "RetryDecision")

#: Why an event left the outbox for the dead-letter table.
DeadLetterReason = Literal["undecodable", "permanent", "max_attempts"]


class OutboxRetry:
    """Exponential backoff per row, then the dead-letter table after ``max_attempts``.

    The n-th failed attempt (``attempts == n``) waits
    :func:`~triotok.resilience.backoff_delay` ``(backoff, n - 1)`` seconds; an
    error the event bus would not retry either (:func:`~triotok.resilience.is_retryable`:
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
        # Checked here too so that the error names the relay's option, not "attempts".
        positive_int("max_attempts", max_attempts)
        self.rule = RetryPolicy(attempts=max_attempts, backoff=backoff)
        self._rng = rng or random.Random()

    @property
    def backoff(self) -> Backoff:
        return self.rule.backoff

    @property
    def max_attempts(self) -> int:
        return self.rule.attempts

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        return self.rule.delay(attempts, self._rng)

    def decide(self, attempts: int, error: BaseException) -> RetryDecision:
        """What to do after attempt number ``attempts`` failed with ``error``."""
        return self.rule.decide(attempts, error, self._rng)
