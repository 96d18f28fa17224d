"""Counting the statements a request sends to the store: the no-N+1 tests' harness.

``count_statements(app)`` swaps the application's store (behind its
``StoreHandle``) for a proxy that records every statement, in transactions
or not, and puts the real store back on exit::

    with count_statements(server.app) as counted:
        await server.client.get("/api/products?limit=100", headers=auth)
    assert counted.total == 1

Statements of the platform's background loops (the outbox relay and feed,
the search monitor: they read ``outbox``, ``inbox``, ``search_rebuilds``,
dead letters) run whenever they like, so they are recorded apart
(``background``) and not in ``total``. Any module's list test can use it
(products, content nodes; orders with their items next).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from triotok.store import Store, StoreHandle

__all__ = ("Counted", "count_statements")

BACKGROUND = re.compile(r"\b(outbox|inbox|search_rebuilds|event_dead_letters)\b")


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)

    def record(self, sql: str) -> None:
        (self.background if BACKGROUND.search(sql) else self.statements).append(sql)

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
