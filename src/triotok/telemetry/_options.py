"""What the telemetry layer is told to do (the composition root fills it from the settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._exceptions import InvalidConfig

__all__ = ("EXPORTERS", "LOG_FORMATS", "TelemetryOptions")

#: ``tracing`` values: no tracing, OTLP over HTTP (protobuf), or span lines on stdout.
EXPORTERS = ("off", "otlp", "console")
#: ``log_format`` values: JSON lines unless stderr is a terminal, or always one of them.
LOG_FORMATS = ("auto", "json", "text")

Exporter = Literal["off", "otlp", "console"]


@dataclass(frozen=True, slots=True)
class TelemetryOptions:
    """Traces, metrics and their resource attributes for one process.

    ``tracing="off"`` installs no tracer at all (no per-message or
    per-request work); ``sample_ratio`` is the share of new traces kept by
    the parent-based sampler (a request with a sampled ``traceparent`` is
    always kept, an unsampled one never). ``metrics=False`` leaves
    ``/metrics`` answering 404 and adds nothing to a request.
    """

    tracing: Exporter = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    sample_ratio: float = 1.0
    service_name: str = "triotok"
    service_version: str = ""
    #: ``service.instance.id``: the node (``hostname:pid`` by default).
    instance_id: str = ""
    metrics: bool = True

    def __post_init__(self) -> None:
        if self.tracing not in EXPORTERS:
            raise InvalidConfig("tracing", f"{self.tracing!r}; one of {', '.join(EXPORTERS)}")
        ratio = self.sample_ratio
        if isinstance(ratio, bool) or not 0.0 <= ratio <= 1.0:  # nan fails too
            raise InvalidConfig("trace_sample_ratio", f"must be within [0, 1], got {ratio!r}")
        if not self.service_name:
            raise InvalidConfig("service_name", "must not be empty")
        if self.tracing == "otlp" and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise InvalidConfig("otlp_endpoint", f"{self.otlp_endpoint!r} is not an http(s) URL")

    @property
    def enabled(self) -> bool:
        """Whether anything (traces or metrics) is collected."""
        return self.tracing != "off" or self.metrics
