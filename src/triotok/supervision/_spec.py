"""Supervision specifications: what to run, how to restart it, how to stop it.

Specs are immutable and validated when built, so a mistake is reported with
the offending field at construction instead of at the first crash.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidConfig
from .._util import positive_int, seconds, validate_name
from ..actors import Mailbox
from ..resilience import Backoff

__all__ = ("ChildSpec", "Restart", "Strategy", "SupervisorSpec")


class Strategy(enum.Enum):
    """Which children restart when one of them fails (OTP)."""

    ONE_FOR_ONE = "one_for_one"  # only the failed child
    ONE_FOR_ALL = "one_for_all"  # all children
    REST_FOR_ONE = "rest_for_one"  # the failed child and those started after it


class Restart(enum.Enum):
    """When a child that exited is restarted (OTP)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an exception
    TEMPORARY = "temporary"  # never


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    ``factory(*args, **kwargs)`` builds the actor; it may also be a
    :class:`SupervisorSpec` for a nested supervisor.  ``shutdown`` is the
    seconds a stopping child gets to finish before it is cancelled (``0``:
    at once, ``None``: no limit, the default for supervisors).
    """

    id: str
    factory: Callable[..., Any] | SupervisorSpec
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0
    mailbox: Mailbox = field(default_factory=Mailbox)

    def __post_init__(self) -> None:
        validate_name("id", self.id)
        if not isinstance(self.factory, SupervisorSpec) and not callable(self.factory):
            raise InvalidConfig(
                "factory", f"must be callable or a SupervisorSpec: {self.factory!r}"
            )
        if not isinstance(self.restart, Restart):
            raise InvalidConfig("restart", f"must be a Restart, got {self.restart!r}")
        seconds("shutdown", self.shutdown, allow_none=True)
        if not isinstance(self.mailbox, Mailbox):
            raise InvalidConfig("mailbox", f"must be a Mailbox, got {self.mailbox!r}")
        object.__setattr__(self, "args", tuple(self.args))

    @property
    def is_supervisor(self) -> bool:
        return isinstance(self.factory, SupervisorSpec)


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor: its children (started left to right), strategy and limits.

    More than ``intensity`` restarts within ``period`` seconds make the
    supervisor stop its children (right to left) and fail, escalating to its
    parent.  ``children`` may hold :class:`ChildSpec` or nested
    :class:`SupervisorSpec` (which becomes a child with ``shutdown=None``).
    """

    name: str
    children: Sequence[ChildSpec | SupervisorSpec] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 3
    period: float = 5.0
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        validate_name("name", self.name)
        strategy: Any = self.strategy  # checked at run time: callers may pass anything
        if not isinstance(strategy, Strategy):
            choices = ", ".join(s.name for s in Strategy)
            raise InvalidConfig("strategy", f"unknown strategy {strategy!r}; one of {choices}")
        positive_int("intensity", self.intensity, allow_zero=True)
        seconds("period", self.period, allow_zero=False)
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise InvalidConfig("backoff", f"must be a Backoff or None, got {self.backoff!r}")
        specs = tuple(as_child_spec(c) for c in self.children)
        seen: set[str] = set()
        for spec in specs:
            if spec.id in seen:
                raise InvalidConfig("children", f"duplicate child id {spec.id!r} in {self.name!r}")
            seen.add(spec.id)
        object.__setattr__(self, "children", specs)

    @property
    def child_specs(self) -> tuple[ChildSpec, ...]:
        return tuple(self.children)  # type: ignore[arg-type]  # normalised in __post_init__


def as_child_spec(item: ChildSpec | SupervisorSpec) -> ChildSpec:
    """A nested SupervisorSpec is a child with no shutdown limit."""
    if isinstance(item, ChildSpec):
        return item
    if isinstance(item, SupervisorSpec):
        return ChildSpec(item.name, item, shutdown=None)
    raise InvalidConfig("children", f"expected ChildSpec or SupervisorSpec, got {item!r}")
