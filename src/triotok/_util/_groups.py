"""Unwrapping exception groups that hold a single failure.

A trio nursery wraps even a lone failure in an ``ExceptionGroup``. Where a
context manager or a supervisor reports one failure, callers expect the
failure itself, not a one-member group around it.
"""

from __future__ import annotations

__all__ = ("single_leaf",)


def single_leaf(exc: BaseException) -> BaseException | None:
    """The one exception inside ``exc`` and its nested one-member groups.

    ``exc`` itself when it is not a group; ``None`` when some group on the way
    down holds more than one exception (the failures must stay together).

    >>> single_leaf(ExceptionGroup("g", [ExceptionGroup("h", [KeyError(1)])]))
    KeyError(1)
    >>> single_leaf(ExceptionGroup("g", [KeyError(1), KeyError(2)])) is None
    True
    """
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc
