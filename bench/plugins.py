"""Plugins: load time, and event delivery to an inline and a process-isolated plugin.

``python -m bench plugins [--quick]``. An application (SQLite in a temporary
directory, no HTTP) discovers two copies of one small plugin, one
``inline`` and one ``process``, and every row is measured in this run:

- ``load``: from ``enable`` to ``running`` (its instance, its subtree, for
  ``process`` its child forked from the warm forkserver and initialised over
  the pipe, and its bus subscription), repeated after a ``disable``; the
  seeds' budget is < 100 ms per plugin. The first process start also pays
  the forkserver's own start once: reported on its own row.
- ``delivery latency``: ``bus.deliver(envelope, wait=True)`` one event at a
  time, so the figure is the whole trip until the handler returned (for
  ``process``: two frames over the pipes and the child's handler), p50/p99,
  against a plain subscriber actor on the same bus;
- ``delivery rate``: a batch of events delivered without waiting (spread
  over the bus's lanes), until every handler ran.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench._harness import Report, Row, percentiles, progress
from bench._plugin_sample import TENANT, InlineBench, Ping, ProcessBench
from triotok import Actor
from triotok.app import open_application
from triotok.config import load_settings
from triotok.transport import Envelope


class Plain(Actor):
    """The baseline: a subscriber actor (``reached`` is set once it handled ``target``)."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = trio.Event()

    async def receive(self, message: Any) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()

    def expect(self, more: int) -> None:
        """Call before delivering ``more`` events; then :meth:`wait`."""
        self.target, self.reached = self.count + more, trio.Event()

    async def wait(self) -> None:
        if self.count < self.target:
            await self.reached.wait()


def _envelope(i: int) -> Envelope:
    return Envelope.new(Ping(f"k{i}"), tenant_id=TENANT)


async def _latency(deliver: Any, count: int) -> list[float]:
    samples = []
    for i in range(count):
        envelope = _envelope(i)
        started = time.perf_counter()
        await deliver(envelope, wait=True)
        samples.append(time.perf_counter() - started)
    return samples


async def _rate(deliver: Any, handled: Any, count: int) -> float:
    """Deliver ``count`` events without waiting; the rate once ``handled(total)`` returned."""
    started = time.perf_counter()
    for i in range(count):
        await deliver(_envelope(i), wait=False)
    await handled()
    return count / (time.perf_counter() - started)


async def _run(quick: bool, report: Report) -> None:
    loads = 3 if quick else 10
    events = 300 if quick else 3_000
    with tempfile.TemporaryDirectory(prefix="triotok-bench-plugins-") as tmp:
        settings = load_settings(flags={"store_url": f"sqlite:///{Path(tmp) / 'bench.db'}"})
        async with open_application(
            settings, serve_http=False, plugins=(InlineBench, ProcessBench)
        ) as app:
            manager = app.services.plugins
            bus = app.bus

            for name in ("bench-inline", "bench-process"):
                progress(f"load {name}: {loads} enables")
                samples = []
                for attempt in range(loads + 1):
                    started = time.perf_counter()
                    status = await manager.enable(name, who="bench")
                    elapsed = time.perf_counter() - started
                    assert status.state.value == "running", status.reason
                    if attempt == 0 and name == "bench-process":
                        report.add(
                            Row(
                                "load process, first (starts the forkserver)",
                                elapsed * 1000,
                                "ms",
                            )
                        )
                    elif attempt:
                        samples.append(elapsed)
                    await manager.disable(name, who="bench")
                p50, p99 = percentiles(samples, 50, 99)
                kind = name.split("-")[1]
                report.add(
                    Row(
                        f"load {kind} (enable -> running), median",
                        statistics.median(samples) * 1000,
                        "ms",
                        budget="< 100 ms",
                        ok=statistics.median(samples) < 0.1,
                        extra={"p99_ms": p99 * 1000, "max_ms": max(samples) * 1000},
                    )
                )
                report.add(Row(f"load {kind}, worst of {loads}", max(samples) * 1000, "ms"))

            plain = Plain()
            ref = await app.system.spawn(lambda: plain, name="bench-plain")
            await bus.subscribe("bench.plugin_ping", ref, group="bench-plain")
            progress("delivery to a plain subscriber actor")
            latency = await _latency(bus.deliver, events)
            p50, p99 = percentiles(latency, 50, 99)
            report.add(Row("delivery latency, plain actor, p50", p50 * 1e6, "µs"))
            report.add(Row("delivery latency, plain actor, p99", p99 * 1e6, "µs"))
            plain.expect(events)
            report.add(
                Row(
                    "delivery rate, plain actor",
                    await _rate(bus.deliver, plain.wait, events),
                    "events/s",
                )
            )
            await bus.unsubscribe("bench.plugin_ping", ref, group="bench-plain")

            for name in ("bench-inline", "bench-process"):
                kind = name.split("-")[1]
                await manager.enable(name, who="bench")
                await manager.switch(name, TENANT, True, who="bench")
                progress(f"delivery to the {kind} plugin")
                latency = await _latency(bus.deliver, events)
                p50, p99 = percentiles(latency, 50, 99)
                report.add(Row(f"delivery latency, {kind} plugin, p50", p50 * 1e6, "µs"))
                report.add(Row(f"delivery latency, {kind} plugin, p99", p99 * 1e6, "µs"))
                report.compare(
                    f"delivery latency, {kind} plugin, p99",
                    "delivery latency, plain actor, p99",
                    higher_is_better=False,
                )
                done = manager.status(name).statistics["calls"].get("ok", 0) + events

                async def handled(name: str = name, done: int = done) -> None:
                    await manager.wait_for(
                        name, lambda s: s.statistics["calls"].get("ok", 0) >= done
                    )

                rate = await _rate(bus.deliver, handled, events)
                report.add(Row(f"delivery rate, {kind} plugin", rate, "events/s"))
                report.compare(f"delivery rate, {kind} plugin", "delivery rate, plain actor")
                await manager.disable(name, who="bench")


def main(args: argparse.Namespace) -> Report:
    """Measure plugin load times and event delivery; see the module docstring."""
    report = Report("plugins: load time, event delivery inline and process-isolated")
    trio.run(_run, bool(getattr(args, "quick", False)), report)
    return report
