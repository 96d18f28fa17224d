"""Leaf helpers shared by every layer: validators, constants, small helpers.

This package imports only :mod:`triotok._exceptions` and the standard
library, so any layer (the core included) may use it.
"""

from __future__ import annotations

from ._constants import DEFAULT_STORE_URL as DEFAULT_STORE_URL
from ._constants import SEGMENT_PATTERN as SEGMENT_PATTERN
from ._constants import TENANT_ID_PATTERN as TENANT_ID_PATTERN
from ._groups import single_leaf as single_leaf
from ._metadata import fixup_module_metadata as fixup_module_metadata
from ._metadata import is_private_module as is_private_module
from ._validate import fraction as fraction
from ._validate import percentage as percentage
from ._validate import positive_int as positive_int
from ._validate import rate as rate
from ._validate import seconds as seconds
from ._validate import validate_name as validate_name

__all__ = (
    "DEFAULT_STORE_URL",
    "SEGMENT_PATTERN",
    "TENANT_ID_PATTERN",
    "fixup_module_metadata",
    "fraction",
    "is_private_module",
    "percentage",
    "positive_int",
    "rate",
    "seconds",
    "single_leaf",
    "validate_name",
)
