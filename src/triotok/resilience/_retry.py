"""Sans-I/O retry rule shared by the event bus and the outbox relay.

One rule: attempt ``n`` (1-based) failed with ``error``; if the error is final
(:func:`is_retryable`) or ``n`` reached ``attempts``, give up (dead-letter),
else wait :func:`~triotok.resilience.backoff_delay` ``(backoff, n - 1)``
seconds and try again. :meth:`RetryPolicy.decide` says which. The bus calls it
after each failed hand-over to a subscriber; the relay after each failed
delivery of an outbox row (whose attempt count lives in the database, see
:class:`~triotok.store.OutboxRetry`). No trio here: the random source is passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from .._exceptions import ActorCrashed, InvalidConfig, PermanentError, SchemaError, TriotokError
from .._util import positive_int, seconds
from ._backoff import Backoff, backoff_delay

__all__ = ("GiveUpReason", "RetryDecision", "RetryPolicy", "failure_cause", "is_retryable")

#: Why a retried operation was given up: a final error, or every attempt used.
GiveUpReason = Literal["permanent", "max_attempts"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``dead_letter`` is None to retry after ``delay`` seconds, else the reason to give up."""

    delay: float
    dead_letter: GiveUpReason | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the bus retries a subscriber that failed to handle an event.

    ``attempts`` counts every hand-over including the first: with the default
    5 and ``Backoff(min=0.1, max=10, jitter=0.2)`` an event failing
    transiently is tried at t=0 and after about 0.1, 0.2, 0.4 and 0.8 more
    seconds, then dead-lettered. ``timeout`` bounds each attempt (the
    ``ask`` timeout); a timeout counts as a retryable failure.

    >>> RetryPolicy(attempts=3, backoff=Backoff(min=1.0, max=30.0, jitter=0.0)).attempts
    3
    """

    attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(min=0.1, max=10.0, jitter=0.2))
    timeout: float = 5.0

    def __post_init__(self) -> None:
        positive_int("attempts", self.attempts)
        if not isinstance(self.backoff, Backoff):
            raise InvalidConfig("backoff", f"must be a Backoff, got {self.backoff!r}")
        seconds("timeout", self.timeout, allow_zero=False)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based).

        ``backoff.reset_after`` does not apply: the count is of one operation's
        attempts, not of a long-running child's restarts.
        """
        return backoff_delay(self.backoff, attempt - 1, rng)

    def decide(self, attempt: int, error: BaseException, rng: random.Random) -> RetryDecision:
        """What to do after attempt number ``attempt`` failed with ``error``.

        >>> policy = RetryPolicy(attempts=3, backoff=Backoff(min=1, max=60, jitter=0))
        >>> rng = random.Random()
        >>> policy.decide(1, RuntimeError(), rng)
        RetryDecision(delay=1.0, dead_letter=None)
        >>> policy.decide(3, RuntimeError(), rng).dead_letter
        'max_attempts'
        """
        if not is_retryable(error):
            return RetryDecision(0.0, "permanent")
        if attempt >= self.attempts:
            return RetryDecision(0.0, "max_attempts")
        return RetryDecision(self.delay(attempt, rng))


def failure_cause(error: BaseException) -> BaseException:
    """The error the subscriber raised (unwrapping :class:`ActorCrashed`), else ``error`` itself."""
    return error.cause if isinstance(error, ActorCrashed) else error


def is_retryable(error: BaseException) -> bool:
    """Whether a failed hand-over of an event to a subscriber is worth another attempt.

    An error the subscriber's handler raised (the ``cause`` of
    :class:`ActorCrashed`) is final when it is a :class:`PermanentError`, a
    :class:`SchemaError` or any other :class:`TriotokError` whose
    ``retryable`` is false; every other handler error (``TransientError``,
    ``ConnectionError``, ``ValueError``...) is retried. Failures of the
    hand-over itself (``AskTimeout``, ``ActorStopped`` while the subscriber
    restarts, ``MailboxFull``) are retried; a ``PermanentError`` or
    ``SchemaError`` raised directly is final.
    """
    if not isinstance(error, ActorCrashed):
        # Hand-over failures are retried; a PermanentError or SchemaError raised
        # directly (a plain sink, a strict-mode encode) never heals.
        return not isinstance(error, PermanentError | SchemaError)
    cause = error.cause
    if isinstance(cause, PermanentError | SchemaError):
        return False
    return not isinstance(cause, TriotokError) or cause.retryable
