"""Leaf helpers shared by every layer: the validators of configuration values.

This package imports only :mod:`triotok._exceptions` and the standard
library, so any layer (the core included) may use it.
"""

from __future__ import annotations

from ._validate import fraction as fraction
from ._validate import percentage as percentage
from ._validate import positive_int as positive_int
from ._validate import rate as rate
from ._validate import seconds as seconds

__all__ = ("fraction", "percentage", "positive_int", "rate", "seconds")
