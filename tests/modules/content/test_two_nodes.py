"""Two application nodes on one SQLite database write the same content node.

Each node has its own entity for the key; writes compare ``version``. A
write based on a state another node changed is not applied: the entity
reloads and retries once, where the caller's ``If-Match`` decides (412), or,
without one, the command applies to the fresh state.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from triotok.app import open_application
from triotok.config import load_settings
from triotok.modules.access import ApiKeyRepository, Role
from triotok.modules.tenants import TenantRepository

NODES = "/api/content/nodes"
_PAGE = {"kind": "page", "translations": {"en": {"title": "Shared", "slug": "shared"}}}


async def test_two_nodes_never_overwrite_each_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    flags = {"port": 0, "store_url": url, "rate_limit_per_ip": 10**6, "graceful_timeout": 2.0}
    with trio.fail_after(60):
        async with (
            open_application(load_settings(flags=flags)) as one,
            open_application(load_settings(flags=flags)) as two,
        ):
            await one.context.get(TenantRepository).create("acme", "Acme", actor="test")
            _, key = await one.context.get(ApiKeyRepository).create(
                "acme", Role.ADMIN, actor="test"
            )
            auth = {"Authorization": f"Bearer {key}"}
            async with (
                httpx.AsyncClient(base_url=one.url) as a,
                httpx.AsyncClient(base_url=two.url) as b,
            ):
                node_id = (await a.post(NODES, json=_PAGE, headers=auth)).json()["id"]
                url_of = f"{NODES}/{node_id}"
                # Both nodes now hold an active entity at version 1.
                assert (await b.get(url_of, headers=auth)).json()["version"] == 1
                changed = await a.patch(
                    url_of, json={"tags": ["a"]}, headers={**auth, "If-Match": '"1"'}
                )
                assert changed.json()["version"] == 2
                # Node two still believes version 1: its write is refused, not applied.
                stale = await b.patch(
                    url_of, json={"tags": ["b"]}, headers={**auth, "If-Match": '"1"'}
                )
                assert stale.status_code == 412, stale.text
                assert stale.json()["code"] == "version_mismatch"
                # Without If-Match the command is retried on the reloaded state.
                published = await b.post(f"{url_of}/publish", headers=auth)
                assert published.status_code == 200, published.text
                assert published.json()["version"] == 3
                assert published.json()["tags"] == ["a"]
            stored = await one.context.store.store.fetchrow(
                "SELECT status, version FROM content_nodes WHERE id = $1", node_id
            )
    assert (stored["status"], stored["version"]) == ("published", 3)
