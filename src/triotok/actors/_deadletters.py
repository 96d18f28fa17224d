"""Dead letters: messages that could not be delivered or handled.

Every dropped, undeliverable or crashing message ends here with its reason and
target path: counted, the most recent kept in a bounded ring, logged at a
limited rate, and offered to subscribers (telemetry, the operators' view).
"""

from __future__ import annotations

import enum
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .._util import positive_int, rate

__all__ = ("DeadLetter", "DeadLetterOffice", "DeadLetterReason", "DeadLetterStatistics")

logger = logging.getLogger("triotok.deadletters")


class DeadLetterReason(enum.StrEnum):
    """Why a message became a dead letter (stable strings, used in metrics)."""

    MAILBOX_FULL = "mailbox_full"  # DROP_NEW: the arriving message was dropped
    DROPPED_OLDEST = "dropped_oldest"  # DROP_OLD: the oldest queued message was dropped
    STOPPED = "stopped"  # the target is stopped, or stopped with the message queued
    CRASHED = "crashed"  # the handler raised on this message
    NO_RECIPIENT = "no_recipient"  # sent to something that takes no messages


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message that was not handled, with why and for whom."""

    message: Any
    recipient: str
    reason: DeadLetterReason
    error: BaseException | None = None
    at: float = 0.0  # trio clock
    wall: float = field(default_factory=time.time)  # for humans

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the message as a bounded ``repr``)."""
        text = repr(self.message)
        return {
            "recipient": self.recipient,
            "reason": self.reason.value,
            "message": text if len(text) <= 200 else text[:197] + "...",
            "message_type": type(self.message).__name__,
            "error": None
            if self.error is None
            else {"type": type(self.error).__name__, "message": str(self.error)},
            "at": self.at,
            "wall": self.wall,
        }


@dataclass(frozen=True, slots=True)
class DeadLetterStatistics:
    """Counts since start; ``kept`` is how many the ring holds now."""

    total: int
    by_reason: dict[str, int]
    kept: int
    log_suppressed: int


class DeadLetterOffice:
    """Counts, keeps and logs dead letters.

    ``capacity`` bounds the ring of recent letters; at most ``log_per_second``
    are logged, the rest counted as suppressed and summarised in the next log
    line (``0``: log none). Both are checked: ``InvalidConfig`` for a
    ``capacity`` below 1 or a ``log_per_second`` that is negative or not finite.
    """

    def __init__(self, *, capacity: int = 1000, log_per_second: float = 10.0) -> None:
        self._ring: deque[DeadLetter] = deque(maxlen=positive_int("capacity", capacity))
        self._by_reason: Counter[str] = Counter()
        self._total = 0
        self._log_per_second = rate("log_per_second", log_per_second, allow_zero=True)
        self._log_window = -1.0
        self._logged_in_window = 0
        self._suppressed = 0
        self._suppressed_total = 0
        self._subscribers: list[Callable[[DeadLetter], None]] = []

    def post(
        self,
        message: Any,
        recipient: str,
        reason: DeadLetterReason,
        error: BaseException | None = None,
    ) -> DeadLetter:
        """Record one dead letter and return it."""
        letter = DeadLetter(message, recipient, reason, error, _now())
        self._total += 1
        self._by_reason[reason.value] += 1
        self._ring.append(letter)
        self._log(letter)
        for callback in self._subscribers:
            try:
                callback(letter)
            except Exception:  # a broken observer must not lose the letter for others
                logger.exception("dead-letter subscriber %r failed", callback)
        return letter

    def subscribe(self, callback: Callable[[DeadLetter], None]) -> Callable[[], None]:
        """Call ``callback`` for every new dead letter; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def recent(self, limit: int | None = None) -> list[DeadLetter]:
        """The most recent letters, newest last."""
        items = list(self._ring)
        return items if limit is None else items[-limit:]

    def clear(self) -> None:
        """Empty the ring (counts are kept: they are totals since start)."""
        self._ring.clear()

    def statistics(self) -> DeadLetterStatistics:
        return DeadLetterStatistics(
            self._total, dict(self._by_reason), len(self._ring), self._suppressed_total
        )

    def _log(self, letter: DeadLetter) -> None:
        now = letter.at
        if now - self._log_window >= 1.0:
            if self._suppressed:
                logger.warning("%d more dead letters were not logged", self._suppressed)
            self._log_window, self._logged_in_window, self._suppressed = now, 0, 0
        if self._logged_in_window < self._log_per_second:
            self._logged_in_window += 1
            logger.info(
                "dead letter to %s (%s): %s%s",
                letter.recipient,
                letter.reason.value,
                type(letter.message).__name__,
                "" if letter.error is None else f" [{type(letter.error).__name__}: {letter.error}]",
            )
        else:
            self._suppressed += 1
            self._suppressed_total += 1


def _now() -> float:
    try:
        return trio.current_time()
    except RuntimeError:  # outside a trio run (e.g. a synchronous test of the office)
        return 0.0
