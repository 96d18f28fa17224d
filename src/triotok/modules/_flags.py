"""Feature flags as every module reads them: the rules and the node-local set (no I/O).

A flag is on or off for a tenant (or an API key) by these rules, first match
wins (docs/reference/flags.md)::

    unknown flag            -> the caller's default (False unless given)
    enabled is false        -> off        (the kill switch beats everything)
    tenant in deny          -> off
    the tenant's own choice -> that       (only for tenant_editable flags)
    tenant in allow         -> on
    rollout percentage      -> on for the subjects whose stable bucket is below it

The bucket of a subject is ``blake2b(flag name, subject) mod 10000``: the same
on every node and every run, independent between flags, so raising a
rollout from 10 % to 20 % keeps the first 10 % on.

:class:`FlagSet` holds this node's copy (the flags module loads it from the
store and applies every change event of any node); code asks it::

    if ctx.flags.enabled("checkout.v2", tenant=tenant_id):
        ...
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import InvalidInput

__all__ = ("BUCKETS", "Flag", "FlagEvaluation", "FlagSet", "FlagStatistics", "bucket")

#: Rollout resolution: a percentage with two decimals.
BUCKETS = 10_000
FLAG_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")

Subject = Literal["tenant", "key"]


def bucket(name: str, subject: str) -> int:
    """The stable bucket (0..9999) of ``subject`` for the flag ``name``."""
    digest = hashlib.blake2b(f"{name}\x00{subject}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def check_flag_name(name: str) -> str:
    if not isinstance(name, str) or not FLAG_NAME.fullmatch(name):
        raise InvalidInput(
            f"a flag name matches {FLAG_NAME.pattern}", code="invalid_flag_name", field="name"
        )
    return name


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag's rules (see the module docstring for how they combine).

    ``rollout`` is a percentage (two decimals count); ``by`` says whether the
    rollout buckets tenants or API keys; ``tenant_editable`` lets a tenant's
    admins turn the flag on or off for their tenant (``/api/flags``).
    """

    name: str
    enabled: bool = False
    rollout: float = 100.0
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    by: Subject = "tenant"
    tenant_editable: bool = False
    description: str = ""
    version: int = 1
    updated_at: str | None = None
    threshold: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_flag_name(self.name)
        rollout = self.rollout
        if isinstance(rollout, bool) or not isinstance(rollout, int | float):
            raise InvalidInput("rollout is a percentage", field="rollout")
        if not 0.0 <= float(rollout) <= 100.0:
            raise InvalidInput("rollout is a percentage from 0 to 100", field="rollout")
        if self.by not in ("tenant", "key"):
            raise InvalidInput("by is 'tenant' or 'key'", field="by")
        object.__setattr__(self, "threshold", round(float(rollout) * BUCKETS / 100))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "rollout": self.rollout,
            "by": self.by,
            "allow": sorted(self.allow),
            "deny": sorted(self.deny),
            "tenant_editable": self.tenant_editable,
            "version": self.version,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class FlagEvaluation:
    """A flag's value for one subject and the rule that decided it.

    ``reason``: ``unknown``, ``off``, ``denied``, ``tenant``, ``allowed``,
    ``rollout`` (in the rollout), ``excluded`` (outside it).
    """

    name: str
    value: bool
    reason: str


@dataclass(frozen=True, slots=True)
class FlagStatistics:
    """A snapshot of a :class:`FlagSet`: what it holds and how often it was asked."""

    flags: int
    tenant_values: int
    evaluations: int
    loads: int
    changes_applied: int
    loaded: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "flags": self.flags,
            "tenant_values": self.tenant_values,
            "evaluations": self.evaluations,
            "loads": self.loads,
            "changes_applied": self.changes_applied,
            "loaded": self.loaded,
        }


class FlagSet:
    """This node's copy of every flag and tenant choice; evaluation never does I/O."""

    __slots__ = ("_changes", "_evaluations", "_flags", "_loads", "_values", "loaded")

    def __init__(self) -> None:
        self._flags: dict[str, Flag] = {}
        self._values: dict[tuple[str, str], bool] = {}
        self._evaluations = 0
        self._loads = 0
        self._changes = 0
        #: Set once the flags module loaded the store's flags.
        self.loaded = False

    # ------------------------------------------------------------------ asking

    def enabled(
        self, name: str, *, tenant: str | None = None, key: str | None = None, default: bool = False
    ) -> bool:
        """Whether flag ``name`` is on for ``tenant`` (and ``key``, for flags rolled out by key)."""
        self._evaluations += 1
        flag = self._flags.get(name)
        if flag is None:
            return default
        if not flag.enabled:
            return False
        if tenant is not None:
            if tenant in flag.deny:
                return False
            if flag.tenant_editable:
                choice = self._values.get((name, tenant))
                if choice is not None:
                    return choice
            if tenant in flag.allow:
                return True
        threshold = flag.threshold
        if threshold >= BUCKETS:
            return True
        if threshold <= 0:
            return False
        subject = key if flag.by == "key" and key is not None else tenant
        if subject is None:
            return False
        return bucket(name, subject) < threshold

    def evaluate(
        self, name: str, *, tenant: str | None = None, key: str | None = None, default: bool = False
    ) -> FlagEvaluation:
        """Like :meth:`enabled`, with the rule that decided (for ``/api/flags`` and OpenFeature)."""
        value = self.enabled(name, tenant=tenant, key=key, default=default)
        flag = self._flags.get(name)
        if flag is None:
            reason = "unknown"
        elif not flag.enabled:
            reason = "off"
        elif tenant is not None and tenant in flag.deny:
            reason = "denied"
        elif (
            tenant is not None
            and flag.tenant_editable
            and self._values.get((name, tenant)) is not None
        ):
            reason = "tenant"
        elif tenant is not None and tenant in flag.allow:
            reason = "allowed"
        else:
            reason = "rollout" if value else "excluded"
        return FlagEvaluation(name, value, reason)

    def get(self, name: str) -> Flag | None:
        return self._flags.get(name)

    def tenant_value(self, name: str, tenant: str) -> bool | None:
        return self._values.get((name, tenant))

    def names(self) -> list[str]:
        return sorted(self._flags)

    # ------------------------------------------------------------------ changing (the flags module)

    def replace_all(self, flags: Iterable[Flag], values: Mapping[tuple[str, str], bool]) -> None:
        """Take a complete load from the store."""
        self._flags = {flag.name: flag for flag in flags}
        self._values = dict(values)
        self._loads += 1
        self.loaded = True

    def put(self, flag: Flag) -> None:
        self._flags[flag.name] = flag
        self._changes += 1

    def remove(self, name: str) -> None:
        self._flags.pop(name, None)
        for pair in [pair for pair in self._values if pair[0] == name]:
            del self._values[pair]
        self._changes += 1

    def put_tenant_value(self, name: str, tenant: str, value: bool | None) -> None:
        if value is None:
            self._values.pop((name, tenant), None)
        else:
            self._values[name, tenant] = value
        self._changes += 1

    def statistics(self) -> FlagStatistics:
        return FlagStatistics(
            flags=len(self._flags),
            tenant_values=len(self._values),
            evaluations=self._evaluations,
            loads=self._loads,
            changes_applied=self._changes,
            loaded=self.loaded,
        )
