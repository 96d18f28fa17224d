"""Statistics snapshots of actors (frozen, JSON-ready)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
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
        # Spelled out: dataclasses.asdict deep-copies and is 10x slower, and
        # the tree snapshot calls this for every actor.
        return {
            "path": self.path,
            "state": self.state,
            "mailbox_depth": self.mailbox_depth,
            "capacity": self.capacity,
            "high_water_mark": self.high_water_mark,
            "processed": self.processed,
            "failed": self.failed,
            "dropped": self.dropped,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "latency_p50": self.latency_p50,
            "latency_p99": self.latency_p99,
        }


def percentile(sorted_samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted samples (None when empty)."""
    if not sorted_samples:
        return None
    k = max(0, min(len(sorted_samples) - 1, round(q / 100 * (len(sorted_samples) - 1))))
    return sorted_samples[k]
