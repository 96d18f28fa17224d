"""``make run``'s banner: its orders commands, run with the real ``curl``, place, pay and ship.

The banner's lines are run as printed (only ``$KEY`` and ``ORDER`` filled
in, as its text says), against the demo server the banner describes.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import trio

from tests.http.conftest import ServerFactory
from triotok.app import demo_banner


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


async def _curl(line: str, key: str, order_id: str) -> dict[str, object]:
    command = line.strip().replace("$KEY", key).replace("ORDER", order_id)
    args = shlex.split(command)
    assert args[0] == "curl"
    result = await trio.run_process(args, capture_stdout=True, check=True)
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_the_banner_places_pays_and_ships_an_order(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with make_server(demo=True) as server:
            banner = demo_banner(server.app)
            assert server.app.demo is not None
            key = server.app.demo.demo_key
            section = banner.split("Orders (")[1].split("\n\n")[0]
            lines = [line for line in section.splitlines() if line.strip().startswith("curl")]
            assert len(lines) == 4
            placed = await _curl(lines[0], key, "")
            assert placed["status"] == "confirmed"
            assert placed["total"] == 2 * 1290
            order_id = str(placed["id"])
            paid = await _curl(lines[1], key, order_id)
            assert paid["status"] == "paid"
            shipped = await _curl(lines[2], key, order_id)
            assert (shipped["status"], shipped["tracking_number"]) == ("shipped", "TRACK-1")
            listed = await _curl(lines[3], key, order_id)
            assert [o["id"] for o in listed["items"]] == [order_id]  # type: ignore[attr-defined, index]
            # The banner's Idempotency-Key makes the first command safe to run twice.
            again = await _curl(lines[0], key, "")
            assert again["id"] == order_id
