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

With ``--events nats://...`` (and ``--stream``, ``--prefix``) the transport is
L2: the relay forwards the outbox to that JetStream stream and each group
reads its durable consumer there (``tests/transport/test_stream_faults.py``).

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
from triotok.supervision import ActorSystem, Backoff
from triotok.transport import Envelope, JetStreamConfig, JetStreamTransport, event

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
            transport: OutboxTransport | JetStreamTransport = OutboxTransport(store)
            sink = transport.deliver
            if args.events:
                config = JetStreamConfig(
                    args.events,
                    stream=args.stream,
                    subject_prefix=args.prefix,
                    ack_wait=args.ack_wait,
                    new_group_start="all",
                )
                transport = JetStreamTransport(config)
                await system.spawn(transport.child_spec().factory, transport, name="stream")
                sink = transport.forward
                nursery.start_soon(report, system, transport)
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
            await system.spawn(relay, store, sink, name="relay")
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


async def report(system: ActorSystem, stream: JetStreamTransport) -> None:
    """Every second, the relay's and the stream's numbers (read by a failing test's log)."""
    while True:
        await trio.sleep(1.0)
        try:
            _report(system, stream)
        except Exception as exc:  # a test helper: say why, keep reporting
            say(f"report failed: {type(exc).__name__}: {exc}")


def _report(system: ActorSystem, stream: JetStreamTransport) -> None:
    if True:
        relay = system.tree(prefix="/node/relay").get("components", {}).get("relay", {})
        stats = stream.statistics()
        consumers = [(c.name, c.running, c.received, c.acked, c.naked, c.in_flight,
                      (c.server or {}).get("lag")) for c in stats.consumers]  # fmt: skip
        say(
            f"report relay delivered={relay.get('delivered')} claimed={relay.get('claimed')}"
            f" sink_unavailable={relay.get('sink_unavailable')} error={relay.get('last_error')}"
            f" | stream connected={stats.connected} available={stats.available}"
            f" published={stats.published} dup={stats.duplicates} lag={stats.lag}"
            f" error={stats.last_error} consumers={consumers}"
        )


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
    import faulthandler

    faulthandler.register(signal.SIGUSR1)  # a stuck node's stacks, for a failing test's log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--name", required=True)
    parser.add_argument("--produce", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--groups", default="projector")
    parser.add_argument("--no-relay", action="store_true")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--events", default="")
    parser.add_argument("--stream", default="FAULTS")
    parser.add_argument("--prefix", default="faults")
    parser.add_argument("--ack-wait", type=float, default=2.0)
    trio.run(run_in_loop, parser.parse_args(argv))


async def run_in_loop(args: argparse.Namespace) -> None:
    """One asyncio loop for the process: asyncpg (PostgreSQL) and nats-py share it."""
    import trio_asyncio

    async with trio_asyncio.open_loop():
        await run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
