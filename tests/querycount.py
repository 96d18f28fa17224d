"""Counting the statements a request sends to the store: the no-N+1 tests' harness.

``count_statements(app)`` swaps the application's store (behind its
``StoreHandle``) for a proxy that records every statement, in transactions
or not, and puts the real store back on exit::

    with count_statements(server.app) as counted:
        await server.client.get("/api/products?limit=100", headers=auth)
    assert counted.total == 1

Only the statements the request's own task sends count (hypercorn runs each
request in a ``task_group._handle`` task, and the list and search routes
read the read models in it). The platform's background loops (the outbox
relay and feed, the search monitor, the flags loader's periodic reload,
cache loads) run whenever they like, so their statements are recorded apart
(``background``, with the task that sent them) and never in ``total``: in CI, a
background statement landing inside the window once made a search page
look one statement dearer. Any module's list test can use it (products, content
nodes; orders with their items next).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from triotok.store import Store, StoreHandle

__all__ = ("Counted", "count_statements")

#: The task hypercorn runs a request in (``hypercorn.trio.task_group._handle``).
REQUEST_TASK = re.compile(r"^hypercorn\.")


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    #: ``[task] statement`` for statements of other tasks (background loops, actors).
    background: list[str] = field(default_factory=list)

    def record(self, sql: str) -> None:
        task = trio.lowlevel.current_task().name
        if REQUEST_TASK.match(task):
            self.statements.append(sql)
        else:
            self.background.append(f"[{task}] {sql}")

    def __str__(self) -> str:
        lines = [f"request: {sql}" for sql in self.statements]
        return "\n".join(lines + [f"elsewhere: {line}" for line in self.background])

    @property
    def total(self) -> int:
        return len(self.statements)


class _CountingUnitOfWork:
    def __init__(self, tx: Any, counted: Counted) -> None:
        self._tx = tx
        self._counted = counted

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._tx, name)
        if name in ("execute", "fetch", "fetchrow", "fetchval"):

            async def counted(sql: str, *params: Any) -> Any:
                self._counted.record(sql)
                return await attr(sql, *params)

            return counted
        return attr


class _CountingStore:
    def __init__(self, store: Store, counted: Counted) -> None:
        self._store = store
        self._counted = counted

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in ("execute", "fetch", "fetchrow", "fetchval"):

            async def counted(sql: str, *params: Any) -> Any:
                self._counted.record(sql)
                return await attr(sql, *params)

            return counted
        return attr

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._store.transaction() as tx:
            yield _CountingUnitOfWork(tx, self._counted)


@contextmanager
def count_statements(app: Any) -> Iterator[Counted]:
    handle: StoreHandle = app.context.store
    real = handle.store
    counted = Counted()
    handle._store = _CountingStore(real, counted)  # type: ignore[assignment]  # a test proxy
    try:
        yield counted
    finally:
        handle._store = real
