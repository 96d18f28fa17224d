"""triotok.testing.open_plugin_harness: a plugin on the real platform, called directly."""

from __future__ import annotations

import pytest
import trio

from tests.plugins.sample import InlineRecorder, Noted
from triotok.plugins import CapabilityDenied
from triotok.testing import open_plugin_harness
from triotok.testing._plugins import _match_path


def test_paths_match_their_templates() -> None:
    assert _match_path("/items/<item_id>", "/items/42") == {"item_id": "42"}
    assert _match_path("/items/<item_id>", "/items/42/x") is None
    assert _match_path("/a.b", "/aXb") is None
    assert _match_path("", "") == {}


async def test_the_harness_delivers_requests_and_reads_back() -> None:
    with trio.fail_after(60):
        async with open_plugin_harness(InlineRecorder, tenant="acme") as harness:
            assert await harness.deliver(Noted("one")) == 1
            assert await harness.deliver(Noted("other"), tenant="beta") == 0  # switched off
            seen = await harness.request("GET", "/seen")
            assert [item["text"] for item in seen.body["items"]] == ["one"]
            noted = await harness.request("POST", "/note", body={"text": "two"})
            assert noted.status == 201
            assert [e.payload for e in await harness.published()] == [Noted("two")]
            with pytest.raises(CapabilityDenied):
                await harness.request("GET", "/secret")
            with pytest.raises(LookupError):
                await harness.request("GET", "/nowhere")
            assert await harness.stored("nothing") is None
