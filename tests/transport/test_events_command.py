"""``triotok events status|replay``: the real command against a real stream.

A node (``open_node`` of the L2 tests) consumes in group ``g``; the command
runs as its own process (``python -m triotok.cli``), as an operator would.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from tests.conftest import stream_config
from tests.transport.test_jetstream import eventually, open_node
from triotok._events_command import parse_since, progress_line
from triotok.testing import NatsServer

pytestmark = pytest.mark.nats


async def events(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "triotok.cli", "events", *args]
    with trio.fail_after(60):
        return await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )


async def test_status_and_replay_with_progress(tmp_path: Path, nats_server: NatsServer) -> None:
    config = stream_config(nats_server)
    target = ["--events", nats_server.url, "--stream", config.stream]
    async with open_node(tmp_path, config) as node:
        await node.publish(*range(6))
        await eventually(lambda: len(node.seen) >= 6)
        status = await events("status", *target)
        assert status.returncode == 0, status.stderr
        text = status.stdout.decode()
        assert f"stream {config.stream}  6 events  seq 1..6" in text
        assert "group g" in text

        replay = await events(
            "replay", *target, "--group", "g", "--from-seq", "3", "--timeout", "30"
        )
        assert replay.returncode == 0, replay.stderr
        lines = replay.stdout.decode().splitlines()
        assert lines[0] == "g: replaying from seq 3 (4 events)"
        assert lines[-1].startswith("[" + "#" * 40 + "] 100%  4/4")  # not a tty: plain lines
        await eventually(lambda: len(node.seen) >= 10)
        assert sorted(node.seen[6:]) == [2, 3, 4, 5]  # sequences 3..6

        unknown = await events("replay", *target, "--group", "nobody", "--from-seq", "1")
        assert unknown.returncode == 2
        assert b"no consumer of group 'nobody'" in unknown.stderr
        bad = await events("replay", *target, "--group", "g", "--since", "yesterday")
        assert bad.returncode == 2


async def test_an_unreachable_stream_and_a_missing_url(own_nats_server: NatsServer) -> None:
    own_nats_server.stop()
    down = await events("status", "--events", own_nats_server.url)
    assert down.returncode == 1
    assert b"stream unavailable" in down.stderr
    missing = await events("status")
    assert missing.returncode == 2


def test_since_and_the_progress_line() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_since("90m", now=now) == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert parse_since("2024-05-01T12:00") == now  # no offset: UTC
    with pytest.raises(ValueError, match="neither ISO 8601"):
        parse_since("soon")
    assert progress_line(0, 0, 0.0).startswith("[" + "#" * 40 + "] 100%")
    assert progress_line(5, 10, 2.5) == "[" + "#" * 20 + "." * 20 + "]  50%  5/10  2 events/s"
