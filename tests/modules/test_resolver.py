"""The tenant resolver actor: one store query per stampede, negative caching, restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from triotok import ActorSystem, open_system
from triotok.app import schemas_of
from triotok.modules.tenants import TenantDirectory, TenantRepository, TenantResolver
from triotok.store import StoreHandle, StoreOwner


@pytest.fixture
async def tree(
    tmp_path: Path,
) -> AsyncIterator[tuple[ActorSystem, TenantRepository, TenantDirectory]]:
    async with open_system(name="app") as system:
        handle = StoreHandle()
        await system.spawn(
            StoreOwner, handle, f"sqlite:///{tmp_path}/t.db", schemas_of(), name="store"
        )
        repository = TenantRepository(handle)
        directory = TenantDirectory("tenants")
        await system.spawn(TenantResolver, directory, repository, name="tenants")
        yield system, repository, directory


async def test_a_thousand_concurrent_misses_make_one_query(
    tree: tuple[ActorSystem, TenantRepository, TenantDirectory],
) -> None:
    _, repository, directory = tree
    await repository.create("acme", "Acme", actor="test")
    before = repository.statistics().lookups
    names: list[str] = []

    async def resolve() -> None:
        tenant = await directory.get("acme")
        assert tenant is not None
        names.append(tenant.name)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(1000):
                nursery.start_soon(resolve)
    assert names == ["Acme"] * 1000
    assert repository.statistics().lookups - before == 1


async def test_unknown_tenants_are_cached_negatively(
    tree: tuple[ActorSystem, TenantRepository, TenantDirectory],
) -> None:
    _, repository, directory = tree
    with trio.fail_after(10):
        results = [await directory.get("ghost") for _ in range(10)]
    assert results == [None] * 10
    assert repository.statistics().lookups == 1


async def test_the_directory_follows_a_restarted_resolver(
    tree: tuple[ActorSystem, TenantRepository, TenantDirectory],
) -> None:
    system, repository, directory = tree
    await repository.create("acme", "Acme", actor="test")
    with trio.fail_after(10):
        assert await directory.get("acme") is not None
        system.runtime.lookup("/app/tenants").request_stop()
        await trio.testing.wait_all_tasks_blocked()
        assert system.tree(prefix="/app/tenants", depth=0)["restarts"] == 1
        tenant = await directory.get("acme")
    assert tenant is not None
    assert repository.statistics().lookups == 2  # a fresh cache after the restart
