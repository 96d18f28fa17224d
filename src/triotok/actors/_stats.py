"""Statistics snapshots of actors (frozen, JSON-ready)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ("ActorState", "ActorStatistics", "percentile")


class ActorState(enum.StrEnum):
    """Lifecycle state of an actor or supervisor node."""

    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A point-in-time view of one actor; latencies are seconds of handling time."""

    path: str
    state: str
    mailbox_depth: int
    capacity: int
    high_water_mark: int
    processed: int
    failed: int
    dropped: int
    restarts: int
    last_error: str | None
    latency_p50: float | None
    latency_p99: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted samples (None when empty)."""
    if not sorted_samples:
        return None
    k = max(0, min(len(sorted_samples) - 1, round(q / 100 * (len(sorted_samples) - 1))))
    return sorted_samples[k]
