"""Metrics in the Prometheus text format, with ``prometheus_client``.

Two kinds of series:

* **hot-path instruments**: HTTP requests and tenant resolutions, which
  every request observes on the trio thread, are plain numbers in
  :class:`~._series.HotCounter` / :class:`~._series.HotHistogram` (a dict lookup, an add and
  a bisection; nothing else observes or renders them, so they need no
  lock: with ``prometheus_client``'s locked children, metrics on cost 7-9 %
  of a cached GET's server CPU, now under 1 %); statements and event
  handling, which threads observe too, are ``prometheus_client`` children
  per label tuple, cached;
* **scrape-time series** read from the ``statistics()`` the core already
  keeps (actors, entity regions, breakers, caches, the store, the relay, the
  bus) by :class:`_TreeCollector` walking the tree at each scrape, plus the
  values async *refreshers* fetch just before it (outbox backlog, event dead
  letters, module health, readiness).

Label cardinality is bounded by construction: routes are templates (never
raw paths), an entity region is one series whatever its number of entities,
event types and consumers come from code, statuses and kinds from small sets.

Why ``prometheus_client`` rather than the OpenTelemetry metrics SDK: the
names are exactly the ones operators query (the SDK's Prometheus exporter
rewrites names and units), a labelled child increment costs well under a
microsecond where the SDK hashes an attribute set per call, and a custom
collector turns the core's snapshots into series at scrape time without
keeping a second copy of every counter.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ..actors.lowlevel import ActorCell, Node
from ._series import HotCounter, HotHistogram

__all__ = ("CONTENT_TYPE", "HTTP_METHODS", "Metrics", "Refresher")

logger = logging.getLogger("triotok.telemetry")

#: The ``Content-Type`` of a scrape (text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: ``method`` label values; anything else is ``OTHER``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Seconds, from a cached GET (~1 ms) to a slow write.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds, from an indexed SQLite read (~50 us) to a lock wait.
DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Seconds, from a cache hit (~5 us) to a cold load.
TENANT_BUCKETS = (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.25)

#: Each refresher gets this long per scrape; a slow one keeps its last values.
REFRESH_TIMEOUT = 1.0

#: An async callable run before each scrape; it returns the series it measured.
Refresher = Callable[[], Awaitable[Iterable[Metric]]]

# ``*_created`` series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


class Metrics:
    """The metrics of one application: its own registry, instruments and collectors."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=False)
        self.http_requests = HotCounter(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
        )
        self.http_duration = HotHistogram(
            "http_request_duration_seconds",
            "Seconds from the request head to the end of the response, by route template",
            ("method", "route"),
            HTTP_BUCKETS,
        )
        registry.register(self.http_requests)
        registry.register(self.http_duration)
        self.db_duration = Histogram(
            "db_query_duration_seconds",
            "Seconds per store statement, by kind (select, insert, update, delete, ...)",
            ("kind",),
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.events_published = Counter(
            "events_published",
            "Events written to the outbox, by type",
            ("event_type",),
            registry=registry,
        )
        self.events_processed = Counter(
            "events_processed",
            "Events handled by a subscriber, by type and consumer (group or subscriber)",
            ("event_type", "consumer"),
            registry=registry,
        )
        self.events_failed = Counter(
            "events_failed",
            "Attempts to handle an event that raised (retried or dead-lettered)",
            ("event_type", "consumer"),
            registry=registry,
        )
        self.event_duration = Histogram(
            "event_processing_duration_seconds",
            "Seconds per attempt to handle an event",
            ("event_type", "consumer"),
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.tenant_resolution = HotHistogram(
            "tenant_resolution_duration_seconds",
            "Seconds to resolve a request's tenant (cache hit or load)",
            (),
            TENANT_BUCKETS,
        )
        registry.register(self.tenant_resolution)
        self._tenant_resolution = self.tenant_resolution.child()
        self._http: dict[tuple[str, str, int], tuple[list[int], list[float]]] = {}
        self._db: dict[str, Any] = {}
        self._published: dict[str, Any] = {}
        self._events: dict[tuple[str, str], tuple[Counter, Counter, Histogram]] = {}
        self._refreshers: list[tuple[str, Refresher]] = []
        self._refreshed: dict[str, list[Metric]] = {}
        self._tree = _TreeCollector()
        registry.register(self._tree)
        registry.register(_Refreshed(self._refreshed))

    # ------------------------------------------------------------------ hot path

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request (``route``: the template, ``unmatched`` when none)."""
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            label = method if method in HTTP_METHODS else "OTHER"
            children = self._http[key] = (
                self.http_requests.child(label, route, str(status)),
                self.http_duration.child(label, route),
            )
        children[0][0] += 1
        self.http_duration.observe(children[1], seconds)

    def observe_statement(self, kind: str, seconds: float) -> None:
        child = self._db.get(kind)
        if child is None:
            child = self._db[kind] = self.db_duration.labels(kind)
        child.observe(seconds)

    def observe_published(self, event_type: str) -> None:
        child = self._published.get(event_type)
        if child is None:
            child = self._published[event_type] = self.events_published.labels(event_type)
        child.inc()

    def observe_handled(self, event_type: str, consumer: str, seconds: float, ok: bool) -> None:
        key = (event_type, consumer)
        children = self._events.get(key)
        if children is None:
            children = self._events[key] = (
                self.events_processed.labels(event_type, consumer),
                self.events_failed.labels(event_type, consumer),
                self.event_duration.labels(event_type, consumer),
            )
        (children[0] if ok else children[1]).inc()
        children[2].observe(seconds)

    def observe_tenant_resolution(self, seconds: float) -> None:
        self.tenant_resolution.observe(self._tenant_resolution, seconds)

    # ------------------------------------------------------------------ scrape

    @staticmethod
    def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        """A gauge family for a refresher to fill (``family.add_metric(values, value)``)."""
        return GaugeMetricFamily(name, documentation, labels=list(labels))

    def watch(self, system: Any) -> None:
        """Report the tree of ``system`` (an ActorSystem) at every scrape."""
        self._tree.system = system

    def add_refresher(self, name: str, refresher: Refresher) -> None:
        """Run ``refresher`` before each scrape; its series replace its previous ones."""
        self._refreshers.append((name, refresher))
        self._refreshed.setdefault(name, [])

    async def scrape(self) -> bytes:
        """Run the refreshers (each bounded by ``REFRESH_TIMEOUT``), then render everything."""
        for name, refresher in self._refreshers:
            try:
                with trio.fail_after(REFRESH_TIMEOUT):
                    self._refreshed[name] = list(await refresher())
            except Exception as exc:  # a scrape must answer; the old values stay
                logger.warning("metrics: %s could not be refreshed: %s", name, exc)
            except trio.TooSlowError:  # pragma: no cover  # an Exception subclass already
                raise
        return self.render()

    def render(self) -> bytes:
        """The text format of every series, as they are now (no refresh)."""
        return generate_latest(self.registry)


class _Refreshed(Collector):
    def __init__(self, refreshed: dict[str, list[Metric]]) -> None:
        self._refreshed = refreshed

    def collect(self) -> Iterator[Metric]:
        for metrics in self._refreshed.values():
            yield from metrics


# --------------------------------------------------------------------------- the tree


class _TreeCollector(Collector):
    """Series from the live tree's snapshots (nothing is stored between scrapes)."""

    def __init__(self) -> None:
        self.system: Any = None

    def collect(self) -> Iterator[Metric]:
        system = self.system
        if system is None:
            return
        families = _Families()
        _walk(system.root, families)
        letters = system.dead_letters.statistics()
        families.actor_dead_letters.add_metric([], letters.total)
        yield from families.all()


class _Families:
    def __init__(self) -> None:
        g, c = GaugeMetricFamily, CounterMetricFamily
        path = ["path"]
        region = ["region"]
        self.mailbox = g(
            "actor_mailbox_depth", "Messages queued in an actor's mailbox", labels=path
        )
        self.processed = c("actor_messages_processed", "Messages an actor handled", labels=path)
        self.failed = c("actor_messages_failed", "Messages whose handling crashed", labels=path)
        self.dropped = c("actor_messages_dropped", "Messages its mailbox dropped", labels=path)
        self.restarts = c("actor_restarts", "Restarts of an actor or supervisor", labels=path)
        self.running = g("actor_up", "1 while the actor or supervisor is running", labels=path)
        self.ent_active = g("entities_active", "Active entities of a region", labels=region)
        self.ent_mailbox = g(
            "entities_mailbox_depth", "Commands queued in a region's entities", labels=region
        )
        self.ent_commands = c("entities_commands", "Commands delivered to a region", labels=region)
        self.ent_activations = c(
            "entities_activations", "Entity activations of a region", labels=region
        )
        self.ent_passivations = c(
            "entities_passivations", "Entity passivations of a region", labels=region
        )
        self.ent_restarts = c("entities_restarts", "Crash restarts of entities", labels=region)
        self.ent_poisoned = g("entities_poisoned", "Keys refused until restarted", labels=region)
        self.breaker = g(
            "breaker_state", "1 for the breaker's current state", labels=["breaker", "state"]
        )
        self.breaker_refused = c(
            "breaker_not_permitted_calls", "Calls a breaker refused", labels=["breaker"]
        )
        self.breaker_failure_rate = g(
            "breaker_failure_rate_percent",
            "Failure rate of a breaker's window (-1: not enough calls)",
            labels=["breaker"],
        )
        cache = ["cache"]
        self.cache_hits = c("cache_hits", "Fresh answers of a cache", labels=cache)
        self.cache_misses = c("cache_misses", "Lookups of a cache that needed a load", labels=cache)
        self.cache_size = g("cache_entries", "Entries a cache holds", labels=cache)
        self.tenant_hits = c("tenant_cache_hits", "Tenant lookups answered by the cache")
        self.tenant_misses = c("tenant_cache_misses", "Tenant lookups that loaded the tenant")
        self.db_active = g("db_connections_active", "Store connections in use")
        self.db_idle = g("db_connections_idle", "Store connections idle in the pool")
        self.db_waiting = g("db_tasks_waiting", "Tasks waiting for a store connection or writer")
        self.db_tx = c("db_transactions", "Store transactions, by outcome", labels=["outcome"])
        self.db_write_failures = g(
            "db_consecutive_write_failures", "Transactions in a row the database refused"
        )
        self.outbox_lag = g(
            "outbox_lag_seconds", "Age of the oldest undelivered outbox row at the last check"
        )
        self.relay_delivered = c("outbox_delivered", "Outbox rows this node's relay delivered")
        self.relay_failed = c("outbox_delivery_failures", "Deliveries that raised (retried)")
        self.relay_up = g("outbox_relay_available", "1 while the relay's last store call worked")
        self.bus_in_flight = g("events_in_flight", "Deliveries a subscription still owes")
        self.bus_retries = c("events_retried", "Event deliveries retried after a failure")
        self.index_lag = g(
            "index_lag_seconds",
            "Lag of a read model behind the events (components reporting lag_seconds)",
            labels=["path", "component"],
        )
        self.actor_dead_letters = c("actor_dead_letters", "Messages that became actor dead letters")

    def all(self) -> list[Metric]:
        return [value for value in vars(self).values() if isinstance(value, Metric)]


def _walk(node: Node, out: _Families) -> None:
    path = [node.path]
    out.restarts.add_metric(path, node.restarts)
    out.running.add_metric(path, 1.0 if node.state.value == "running" else 0.0)
    region_statistics = getattr(node, "region_statistics", None)
    if region_statistics is not None:  # an entities region: one series for all its entities
        stats = region_statistics()
        out.ent_active.add_metric(path, stats.active)
        out.ent_mailbox.add_metric(path, stats.mailbox_depth)
        out.ent_commands.add_metric(path, stats.commands)
        out.ent_activations.add_metric(path, stats.activations)
        out.ent_passivations.add_metric(path, stats.passivations)
        out.ent_restarts.add_metric(path, stats.restarts)
        out.ent_poisoned.add_metric(path, stats.poisoned)
        _components(node, out)
        return
    if isinstance(node, ActorCell):
        out.mailbox.add_metric(path, len(node.queue))
        out.processed.add_metric(path, node.processed)
        out.failed.add_metric(path, node.failed)
        out.dropped.add_metric(path, node.dropped)
        _components(node, out)
        sup = node.child_supervisor
        children = sup.children() if sup is not None else []
    else:
        _components(node, out)
        children = node.children()
    for child in children:
        _walk(child, out)


def _components(node: Node, out: _Families) -> None:
    for name, component in node.components.items():
        try:
            stats = component.statistics()
        except Exception:  # a component's view must not break a scrape
            continue
        if not hasattr(stats, "__dataclass_fields__") or hasattr(stats, "__await__"):
            continue
        kind = type(stats).__name__
        if kind == "BreakerStatistics":
            state = stats.state.value
            for candidate in ("closed", "open", "half_open", "forced_open", "disabled"):
                out.breaker.add_metric([stats.name, candidate], 1.0 if candidate == state else 0.0)
            out.breaker_refused.add_metric([stats.name], stats.not_permitted_calls)
            out.breaker_failure_rate.add_metric([stats.name], stats.failure_rate)
        elif kind == "CacheStatistics":
            label = [getattr(component, "name", None) or name]
            hits = stats.hits + stats.negative_hits
            out.cache_hits.add_metric(label, hits)
            out.cache_misses.add_metric(label, stats.misses)
            out.cache_size.add_metric(label, stats.size)
            if label[0] == "tenants":
                out.tenant_hits.add_metric([], hits)
                out.tenant_misses.add_metric([], stats.misses)
        elif kind == "StoreStatistics":
            out.db_active.add_metric([], stats.connections_in_use)
            out.db_idle.add_metric([], stats.connections_idle)
            out.db_waiting.add_metric([], stats.tasks_waiting)
            out.db_tx.add_metric(["committed"], stats.transactions_committed)
            out.db_tx.add_metric(["rolled_back"], stats.transactions_rolled_back)
            out.db_write_failures.add_metric([], stats.consecutive_write_failures)
        elif kind == "RelayStatistics":
            out.outbox_lag.add_metric([], stats.lag_seconds)
            out.relay_delivered.add_metric([], stats.delivered)
            out.relay_failed.add_metric([], stats.failed)
            out.relay_up.add_metric([], 1.0 if stats.available else 0.0)
        elif kind == "BusStatistics":
            out.bus_in_flight.add_metric([], stats.in_flight)
            out.bus_retries.add_metric([], stats.retries)
        else:
            lag = getattr(stats, "lag_seconds", None)
            if isinstance(lag, int | float) and math.isfinite(lag):
                out.index_lag.add_metric([node.path, name], float(lag))
