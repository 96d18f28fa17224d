"""A TrioToK node process for the fault tests (``tests/store/test_faults.py``).

Run as ``python tests/store/_node.py URL --name NAME [options]``. Depending on
the options it runs, under one actor system:

* a producer (``--produce N``, ``-1`` for endless): one unit of work per event,
  a ``fault_data`` row and the event's outbox row together, printing
  ``committed <seq>`` after each commit;
* a relay (unless ``--no-relay``) delivering to one inbox consumer per group
  (``--groups a,b``), each applying its effect, a ``fault_effects`` row, in
  the transaction of its inbox record;
* a readiness probe printing ``ready`` / ``not-ready`` whenever ``store.ping()``
  changes its answer.

It prints ``started`` once everything runs and stops cleanly on SIGTERM.
The effects table has no unique key on purpose: a second application of an
event would show as a second row.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from dataclasses import dataclass

import trio

from triotok import open_system
from triotok.app import schemas_of
from triotok.store import (
    ConflictError,
    InboxConsumer,
    InboxHandler,
    OutboxRelay,
    OutboxTransport,
    Store,
    StoreError,
    StoreUnavailable,
    UnitOfWork,
    open_store,
)
from triotok.supervision import Backoff
from triotok.transport import Envelope, event

SCHEMAS = schemas_of()

#: Test tables, created by the test before any node starts (same SQL on both backends).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fault_data ("
    " seq bigint PRIMARY KEY, event_id text NOT NULL, writer text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fault_effects ("
    " consumer text NOT NULL, event_id text NOT NULL, node text NOT NULL)",
)


@event("test.fault.recorded", version=1)
@dataclass(frozen=True)
class Recorded:
    """The payload of every fault-test event."""

    seq: int


def say(line: str) -> None:
    print(line, flush=True)


async def produce(store: Store, name: str, start: int, count: int) -> None:
    """Commit data row + event per sequence number; retry through outages."""
    seq = start
    while count < 0 or seq < start + count:
        envelope = Envelope.new(Recorded(seq))
        try:
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO fault_data (seq, event_id, writer) VALUES ($1, $2, $3)",
                    seq,
                    str(envelope.id),
                    name,
                )
                await tx.publish(envelope)
        except ConflictError:
            pass  # an earlier attempt whose reply was lost did commit this seq
        except StoreError as exc:
            # The COMMIT may or may not have happened; the retry of the same
            # seq tells (ConflictError: it did).
            if not isinstance(exc, StoreUnavailable):
                say(f"store-error {exc}")
            await trio.sleep(0.05)
            continue
        say(f"committed {seq}")
        seq += 1
    say("produced")


async def probe(store: Store) -> None:
    """Print readiness on every change (a test-only poll every 0.1 s)."""
    ready: bool | None = None
    while True:
        # Any store error means not ready; anything but StoreUnavailable is
        # printed, and the fault test asserts there is none.
        try:
            await store.ping()
            now = True
        except StoreError as exc:
            now = False
            if not isinstance(exc, StoreUnavailable):
                say(f"store-error {exc}")
        if now != ready:
            ready = now
            say("ready" if now else "not-ready")
        await trio.sleep(0.1)


async def run(args: argparse.Namespace) -> None:
    groups = [g for g in args.groups.split(",") if g]
    options = {"pool_size": 4} if args.url.startswith("postgresql") else {}
    async with (
        open_store(args.url, **options, schemas=SCHEMAS) as store,
        open_system(name="node") as system,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(probe, store)
        if not args.no_relay:
            transport = OutboxTransport(store)
            for group in groups:
                consumer = InboxConsumer(store, group, apply(args.name, group))
                await transport.subscribe(group, consumer)
            relay = functools.partial(
                OutboxRelay,
                node_id=args.name,
                batch_size=args.batch,
                lease_seconds=args.lease,
                poll_interval=0.5,
                fallback_interval=0.2,
                max_attempts=1000,
                backoff=Backoff(min=0.05, max=0.5),
                unavailable_backoff=Backoff(min=0.05, max=0.5),
            )
            await system.spawn(relay, store, transport.deliver, name="relay")
        say("started")
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            if args.produce:
                nursery.start_soon(produce, store, args.name, args.start, args.produce)
            async for _ in signals:
                break
        if not args.no_relay:
            relay_node = system.tree(prefix="/node/relay")
            stats = relay_node.get("components", {}).get("relay", {})
            say(f"relay restarts={relay_node['restarts']} {stats}")
        nursery.cancel_scope.cancel()
    say("stopped")


def apply(node: str, group: str) -> InboxHandler:
    """The effect of ``group`` on ``node``: one ``fault_effects`` row per application."""

    async def handler(tx: UnitOfWork, envelope: Envelope) -> None:
        await tx.execute(
            "INSERT INTO fault_effects (consumer, event_id, node) VALUES ($1, $2, $3)",
            group,
            str(envelope.id),
            node,
        )

    return handler


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--name", required=True)
    parser.add_argument("--produce", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--groups", default="projector")
    parser.add_argument("--no-relay", action="store_true")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=20)
    trio.run(run, parser.parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
