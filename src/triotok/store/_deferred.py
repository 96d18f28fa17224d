"""Deferred statements: what a unit of work sends with its next round trip.

``tx.defer``, ``tx.defer_many`` and ``tx.defer_publish`` queue statements
whose result the caller does not need; both backends send the queue, in
order, at the head of the unit's next round trip to the database (the next
statement that answers, an explicit ``flush``, or the commit). A unit of
work that only defers costs one round trip in all: ``BEGIN``, the
statements and ``COMMIT`` together.

Invariants:

* Order is kept: a deferred statement runs after everything queued or run
  before it and before anything after it, so the SQL a caller writes means
  what it would mean statement by statement.
* Failure is final: if a round trip that carried deferred statements (or the
  ``BEGIN``) fails, the statements queued after the failing one never ran,
  so the unit of work refuses any further statement and rolls back, even if
  the caller swallowed the error.
* ``expect``: a deferred statement that must change exactly ``expect`` rows
  (an optimistic-concurrency ``UPDATE ... WHERE version = $n``) raises
  ``error`` (by default a :class:`ConflictError`) at that round trip when it
  does not, and nothing after it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .._exceptions import ConflictError, StoreError

__all__ = ("Deferred", "UnitFailed", "expectation_failed", "many_rows")


class Deferred(NamedTuple):
    """One queued statement: SQL in the backend's dialect and its parameters.

    ``many``: ``params`` is a list of parameter tuples (``executemany``).
    """

    sql: str
    params: Any
    many: bool = False
    expect: int | None = None
    error: Exception | None = None


class UnitFailed(StoreError):
    """A statement of this unit of work failed earlier: it can only roll back now."""

    code = "unit_of_work_failed"


def expectation_failed(statement: Deferred, changed: int) -> Exception:
    """The error for a deferred statement that changed ``changed`` rows, not ``expect``."""
    if statement.error is not None:
        return statement.error
    return ConflictError(
        f"expected {statement.expect} row(s) changed, not {changed}: {statement.sql}"
    )


def many_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The parameter rows of ``defer_many`` as a list of tuples."""
    return [tuple(row) for row in rows]
