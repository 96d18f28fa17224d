"""The leaf helpers of ``triotok._util``: single-failure unwrapping and the shared constants."""

from __future__ import annotations

import pytest

from triotok import config, store
from triotok._exceptions import InvalidConfig
from triotok._util import (
    DEFAULT_STORE_URL,
    SEGMENT_PATTERN,
    TENANT_ID_PATTERN,
    single_leaf,
    validate_name,
)
from triotok.modules import tenants


def test_single_leaf_unwraps_nested_one_member_groups() -> None:
    error = KeyError("k")
    assert single_leaf(error) is error
    assert single_leaf(ExceptionGroup("a", [ExceptionGroup("b", [error])])) is error
    cancelled = KeyboardInterrupt()
    assert single_leaf(BaseExceptionGroup("a", [cancelled])) is cancelled


def test_single_leaf_keeps_several_failures_together() -> None:
    assert single_leaf(ExceptionGroup("a", [KeyError(1), KeyError(2)])) is None
    nested = ExceptionGroup("a", [ExceptionGroup("b", [KeyError(1), KeyError(2)])])
    assert single_leaf(nested) is None


def test_the_constants_are_defined_once() -> None:
    assert store.DEFAULT_STORE_URL is DEFAULT_STORE_URL
    assert config.Settings().store_url == DEFAULT_STORE_URL
    assert tenants.TENANT_ID_PATTERN is TENANT_ID_PATTERN
    assert SEGMENT_PATTERN == r"[A-Za-z0-9_.\-]{1,128}"


@pytest.mark.parametrize("name", ["app", "a.b-c_d", "x" * 128])
def test_names_that_become_path_segments(name: str) -> None:
    assert validate_name("name", name) == name


@pytest.mark.parametrize("name", ["", "a/b", "x" * 129, "é", 3, None])
def test_names_refused(name: object) -> None:
    with pytest.raises(InvalidConfig, match="is not a valid name"):
        validate_name("name", name)
