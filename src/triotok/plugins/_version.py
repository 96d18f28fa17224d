"""Semantic versions and the version ranges a plugin declares for the plugin API.

The plugin API follows semver (``MAJOR.MINOR.PATCH``): a new MINOR adds names
or optional parameters and keeps every existing call working; only a new
MAJOR removes or changes one. A plugin declares the range it was written
against, e.g. ``">=1.0,<2"`` or ``"^1.0"``, and the platform refuses to load
it when :data:`API_VERSION` is outside that range.

Ranges are comma-separated clauses, all of which must hold: ``>=``, ``>``,
``<=``, ``<``, ``==``, ``!=`` followed by a version, ``^X.Y`` (same major,
at least X.Y; for ``0.Y``, same minor) and ``~X.Y`` (same major and minor).
Missing minor or patch numbers are zero. No wildcards, no pre-releases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from .._exceptions import InvalidConfig

__all__ = ("API_VERSION", "Version", "VersionRange")

#: The version of the plugin API this platform implements.
API_VERSION = "1.0.0"

_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})(?:\.(0|[1-9][0-9]{0,5}))?(?:\.(0|[1-9][0-9]{0,5}))?")
_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|>|<|\^|~)\s*([0-9.]+)\s*")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """``MAJOR.MINOR.PATCH``, ordered numerically.

    >>> Version.parse("1.2") < Version.parse("1.10.0")
    True
    """

    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str, *, full: bool = False) -> Version:
        """``"1"``, ``"1.2"`` or ``"1.2.3"``; with ``full`` all three parts are required."""
        match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None or (full and match[3] is None):
            shape = "MAJOR.MINOR.PATCH" if full else "MAJOR[.MINOR[.PATCH]]"
            raise InvalidConfig("version", f"{str(text)[:40]!r} is not a version ({shape})")
        return cls(int(match[1]), int(match[2] or 0), int(match[3] or 0))

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A set of versions: every clause must hold.

    >>> VersionRange.parse(">=1.0,<2").contains(Version.parse("1.4.2"))
    True
    >>> VersionRange.parse("^1.2").contains(Version.parse("2.0"))
    False
    """

    text: str
    clauses: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not isinstance(text, str) or not text.strip() or len(text) > 200:
            raise InvalidConfig("api", f"{str(text)[:40]!r} is not a version range")
        clauses: list[tuple[str, Version]] = []
        for part in text.split(","):
            match = _CLAUSE.fullmatch(part)
            if match is None:
                raise InvalidConfig(
                    "api", f"{part.strip()[:40]!r} is not a clause like '>=1.0' or '^1.2'"
                )
            op, version = match[1], Version.parse(match[2])
            if op == "^":
                upper = (
                    Version(version.major + 1) if version.major else Version(0, version.minor + 1)
                )
                clauses += [(">=", version), ("<", upper)]
            elif op == "~":
                clauses += [(">=", version), ("<", Version(version.major, version.minor + 1))]
            else:
                clauses.append((op, version))
        return cls(text.strip(), tuple(clauses))

    def contains(self, version: Version | str) -> bool:
        if isinstance(version, str):
            version = Version.parse(version)
        return all(_holds(op, version, bound) for op, bound in self.clauses)

    def __str__(self) -> str:
        return self.text


def _holds(op: str, version: Version, bound: Version) -> bool:
    if op == ">=":
        return version >= bound
    if op == ">":
        return version > bound
    if op == "<=":
        return version <= bound
    if op == "<":
        return version < bound
    if op == "==":
        return version == bound
    return version != bound
