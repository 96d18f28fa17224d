"""Two nodes on one PostgreSQL database: a change made on one reaches the other.

PostgreSQL only: the outbox feed wakes every node with ``NOTIFY``; on SQLite
another process's commits are polled every 30 s, which a test should not
wait for.
"""

from __future__ import annotations

import pytest
import trio

from tests.plugins.sample import InlineRecorder
from triotok.app import open_application
from triotok.config import load_settings
from triotok.plugins import PluginState, PluginStatus


@pytest.mark.postgres
async def test_enable_switch_and_disable_follow_on_every_node(pg_url: str) -> None:
    settings = load_settings(flags={"store_url": pg_url})
    plugins = (InlineRecorder,)
    with trio.fail_after(60):
        async with (
            open_application(settings, serve_http=False, plugins=plugins) as one,
            open_application(settings, serve_http=False, plugins=plugins) as two,
        ):
            first, second = one.services.plugins, two.services.plugins

            def state(wanted: PluginState) -> object:
                return lambda status: status.state is wanted

            await first.enable("inline-recorder", who="test")
            status: PluginStatus = await second.wait_for(
                "inline-recorder", state(PluginState.RUNNING)
            )
            assert status.grants == InlineRecorder.capabilities
            await first.switch("inline-recorder", "acme", True, who="test")
            await second.wait_for("inline-recorder", lambda s: s.tenants == 1)
            assert second.switched_on("inline-recorder", "acme")
            await second.disable("inline-recorder", who="test")
            await first.wait_for("inline-recorder", state(PluginState.DISABLED))
            assert two.system.tree(prefix="/app/plugins")["children"][-1]["name"] == "manager"
