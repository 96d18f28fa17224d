"""Fixtures of the telemetry tests: a live server on SQLite, promtool and prometheus binaries."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http.conftest import Server
from triotok.app import MODULES, open_application
from triotok.config import load_settings

ServerFactory = Callable[..., AbstractAsyncContextManager[Server]]


@pytest.fixture
def make_server(tmp_path: Path) -> ServerFactory:
    """``async with make_server(metrics_port=...) as server``: the application on SQLite."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Server]:
        modules = overrides.pop("modules", MODULES)
        telemetry = overrides.pop("telemetry", None)
        values: dict[str, Any] = {
            "port": 0,
            "store_url": f"sqlite:///{tmp_path}/triotok.db",
            "rate_limit_per_ip": 100_000,
            "rate_limit_per_key": 100_000,
            "graceful_timeout": 2.0,
            **overrides,
        }
        settings = load_settings(flags=values)
        async with (
            open_application(settings, modules=modules, telemetry=telemetry) as app,
            httpx.AsyncClient(base_url=app.url, timeout=10.0) as client,
        ):
            yield Server(app, client)

    return start


def _binary(name: str) -> str:
    """A Prometheus binary's path, or a loud skip (a failure with TRIOTOK_REQUIRE_PROMETHEUS=1)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian's prometheus package; .ci/run installs it)"
        if os.environ.get("TRIOTOK_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture
def prometheus() -> str:
    return _binary("prometheus")
