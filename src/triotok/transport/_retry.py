"""Sans-I/O retry rules of the event bus: the policy and the classification of failures.

The bus drives them: it asks :func:`is_retryable` about each failed hand-over
and sleeps :meth:`~triotok.supervision.BackoffState.next_delay` seconds
between attempts (the supervisor's backoff state machine, reused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._exceptions import ActorCrashed, InvalidConfig, PermanentError, SchemaError, TriotokError
from .._util import positive_int, seconds
from ..supervision import Backoff

__all__ = ("RetryPolicy", "failure_cause", "is_retryable")


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
