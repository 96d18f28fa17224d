"""The one place that decides which numbers a setting accepts.

Every duration, count, rate and threshold the library takes goes through one
of these helpers, each raising :class:`~triotok.InvalidConfig` naming the
field. The rules they share:

* ``bool`` is never a number (``True`` is not 1 second or 1 call);
* ``nan`` is always refused; ``inf`` and ``-inf`` are refused unless the
  caller passes ``allow_inf=True`` for a field whose documentation says that
  ``inf`` means "no limit" (no field does today: ``None`` says "no limit");
* values come back as ``float`` (durations, rates) or ``int`` (counts).

The messages are stable (tests and users match on them)::

    <field>: must be a number of seconds, got '5'
    <field>: must be finite, got inf
    <field>: must not be negative, got -1
    <field>: must be positive, got 0
"""

from __future__ import annotations

import math
import re
from typing import Literal, overload

from .._exceptions import InvalidConfig
from ._constants import SEGMENT_PATTERN

__all__ = ("fraction", "percentage", "positive_int", "rate", "seconds", "validate_name")

_NAME = re.compile(SEGMENT_PATTERN)


def _real(field: str, value: object, what: str) -> float:
    """``value`` as a float if it is a real number other than a bool, else InvalidConfig."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfig(field, f"must be {what}, got {value!r}")
    return float(value)


def _finite(field: str, value: float, *, allow_inf: bool = False) -> None:
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)):
        raise InvalidConfig(field, f"must be finite, got {value!r}")


@overload
def seconds(
    field: str,
    value: object,
    *,
    allow_zero: bool = ...,
    allow_none: Literal[False] = ...,
    allow_inf: bool = ...,
) -> float: ...
@overload
def seconds(
    field: str,
    value: object,
    *,
    allow_zero: bool = ...,
    allow_none: Literal[True],
    allow_inf: bool = ...,
) -> float | None: ...
def seconds(
    field: str,
    value: object,
    *,
    allow_zero: bool = True,
    allow_none: bool = False,
    allow_inf: bool = False,
) -> float | None:
    """A duration in seconds: finite, ``>= 0`` (``> 0`` unless ``allow_zero``).

    ``allow_none`` accepts ``None`` (the field documents what it means, usually
    "no limit"); ``allow_inf`` accepts ``+inf`` (only for a field documented so).

    >>> seconds("period", 5), seconds("shutdown", None, allow_none=True)
    (5.0, None)
    """
    if value is None and allow_none:
        return None
    number = _real(field, value, "a number of seconds")
    _finite(field, number, allow_inf=allow_inf)
    if number < 0:
        raise InvalidConfig(field, f"must not be negative, got {value!r}")
    if number == 0 and not allow_zero:
        raise InvalidConfig(field, f"must be positive, got {value!r}")
    return number


def positive_int(field: str, value: object, *, allow_zero: bool = False) -> int:
    """A count: an ``int`` (not a bool) ``>= 1`` (``>= 0`` with ``allow_zero``).

    >>> positive_int("capacity", 10), positive_int("intensity", 0, allow_zero=True)
    (10, 0)
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(field, f"must be an int, got {value!r}")
    if value < 0 and allow_zero:
        raise InvalidConfig(field, f"must not be negative, got {value!r}")
    if value < 1 and not allow_zero:
        raise InvalidConfig(field, f"must be at least 1, got {value!r}")
    return value


def rate(field: str, value: object, *, allow_zero: bool = False) -> float:
    """Events per second: finite and ``> 0`` (``>= 0`` with ``allow_zero``).

    >>> rate("refill_per_second", 10)
    10.0
    """
    number = _real(field, value, "a number per second")
    _finite(field, number)
    if number < 0:
        raise InvalidConfig(field, f"must not be negative, got {value!r}")
    if number == 0 and not allow_zero:
        raise InvalidConfig(field, f"must be positive, got {value!r}")
    return number


def percentage(field: str, value: object) -> float:
    """A threshold in percent: finite, in ``(0, 100]``.

    >>> percentage("failure_rate_threshold", 50)
    50.0
    """
    number = _real(field, value, "a percentage")
    _finite(field, number)
    if not 0 < number <= 100:
        raise InvalidConfig(field, f"must be a percentage in (0, 100], got {value!r}")
    return number


def fraction(field: str, value: object, *, maximum: float | None = 1.0) -> float:
    """A share or factor: finite, ``>= 0`` and ``< maximum`` (``None``: no upper bound).

    >>> fraction("jitter", 0.1), fraction("jitter", 2.5, maximum=None)
    (0.1, 2.5)
    """
    number = _real(field, value, "a number")
    _finite(field, number)
    if number < 0:
        raise InvalidConfig(field, f"must not be negative, got {value!r}")
    if maximum is not None and not number < maximum:
        raise InvalidConfig(field, f"must be in [0, {maximum:g}), got {value!r}")
    return number


def validate_name(field_name: str, name: object) -> str:
    """Names become path segments: letters, digits, ``_ . -``; 1 to 128 long."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidConfig(
            field_name, f"{name!r} is not a valid name ([A-Za-z0-9_.-]{{1,128}}, no '/')"
        )
    return name
