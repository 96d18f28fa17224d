"""The hot path's lock-free counters and histograms render as prometheus_client's own would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from triotok.telemetry._metrics import HTTP_BUCKETS, TENANT_BUCKETS, Metrics

ROUTES = st.sampled_from(("/api/a", "/api/b/{id}", "unmatched"))
METHODS = st.sampled_from(("GET", "POST", "BREW"))
# Values on the bounds themselves too: ``le`` counts a value equal to its bound.
SECONDS = st.one_of(
    st.sampled_from(HTTP_BUCKETS + TENANT_BUCKETS),
    st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
)


def _series(text: bytes, *prefixes: str) -> list[str]:
    return [
        line
        for line in text.decode().splitlines()
        if line.startswith(prefixes)
        or line.startswith(tuple(f"# {k} {p}" for p in prefixes for k in ("HELP", "TYPE")))
    ]


@given(
    requests=st.lists(st.tuples(METHODS, ROUTES, st.sampled_from((200, 404, 500)), SECONDS)),
    tenants=st.lists(SECONDS),
)
def test_they_render_what_prometheus_client_renders(
    requests: list[tuple[str, str, int, float]], tenants: list[float]
) -> None:
    ours = Metrics()
    registry = CollectorRegistry(auto_describe=False)
    counter = Counter(
        "http_requests",
        "HTTP requests answered, by method, route template and status",
        ("method", "route", "status"),
        registry=registry,
    )
    duration = Histogram(
        "http_request_duration_seconds",
        "Seconds from the request head to the end of the response, by route template",
        ("method", "route"),
        buckets=HTTP_BUCKETS,
        registry=registry,
    )
    resolution = Histogram(
        "tenant_resolution_duration_seconds",
        "Seconds to resolve a request's tenant (cache hit or load)",
        buckets=TENANT_BUCKETS,
        registry=registry,
    )
    for method, route, status, seconds in requests:
        ours.observe_request(method, route, status, seconds)
        label = method if method != "BREW" else "OTHER"
        counter.labels(label, route, str(status)).inc()
        duration.labels(label, route).observe(seconds)
    for seconds in tenants:
        ours.observe_tenant_resolution(seconds)
        resolution.observe(seconds)
    prefixes = ("http_requests", "http_request_duration", "tenant_resolution")
    # The same lines; the label tuples may come in another order.
    assert sorted(_series(ours.render(), *prefixes)) == sorted(
        _series(generate_latest(registry), *prefixes)
    )
