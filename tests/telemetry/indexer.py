"""A stand-in for a read-model module (the search module's handler): indexes ``product.*``.

Its handler records the event in the inbox and a row in its own table in one
unit of work, like a projection does, so a trace shows the handler's store
transaction under the bus's consumer span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from triotok.app import MODULES
from triotok.modules import Module, ModuleContext, Subscription
from triotok.store import Migration
from triotok.transport import Envelope

MIGRATION = Migration(
    1,
    "test indexer",
    sqlite=("CREATE TABLE test_index (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL)",),
    postgresql=("CREATE TABLE test_index (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL)",),
)


def _handler(ctx: ModuleContext) -> Callable[[Envelope], Awaitable[None]]:
    async def on_product(envelope: Envelope) -> None:
        async with ctx.store.store.transaction() as tx:
            if await tx.inbox_seen("test-indexer", str(envelope.id)):
                await tx.execute(
                    "INSERT INTO test_index (event_id, event_type) VALUES ($1, $2)",
                    str(envelope.id),
                    envelope.event_type,
                )

    return on_product


INDEXER = Module(
    name="testindex",
    migrations=(MIGRATION,),
    subscriptions=(Subscription("product.*", _handler),),
    description="indexes product events (tests)",
)

#: The application's modules and the indexer.
WITH_INDEXER = (*MODULES, INDEXER)
