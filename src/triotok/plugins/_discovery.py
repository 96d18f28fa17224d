"""Finding plugins: the built-in ones, installed packages' entry points, a plugins directory.

* Built-in plugins are given by the composition root (``triotok.app.PLUGINS``).
* Installed packages declare an entry point in the group ``triotok.plugins``
  whose object is a :class:`~triotok.plugins.Plugin` subclass::

      [project.entry-points."triotok.plugins"]
      hello = "hello_plugin:Hello"

* A plugins directory holds ``<name>.py`` files or ``<name>/__init__.py``
  packages, each with a module-level ``PLUGIN`` (a Plugin subclass).

Each candidate is imported (its declaration is read in the platform's
process; see docs/adr/0008-plugin-isolation.md), instantiated once to read
the Module it contributes, and checked: the plugin-API range, the name, the
Module against the capabilities. A candidate that fails any step is kept as a
:class:`Discovered` with its ``error``, shown as ``failed`` with that reason;
discovery itself never raises, so a broken plugin never stops the platform.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import InvalidConfig
from ..modules import Module
from ._api import Endpoint, Metadata, Plugin
from ._errors import PluginRefused
from ._version import API_VERSION, Version

__all__ = ("ENTRY_POINT_GROUP", "Discovered", "check_plugin", "discover", "load_location")

ENTRY_POINT_GROUP = "triotok.plugins"
DIRECTORY_ATTRIBUTE = "PLUGIN"


@dataclass(frozen=True, slots=True)
class Discovered:
    """One candidate plugin: where it came from and, unless it was refused, what it declares.

    ``location`` says how a child process imports it again: ``("module",
    "pkg.mod:Attr")`` or ``("path", "/dir/name.py", "PLUGIN")``.
    """

    name: str
    source: str
    plugin: type[Plugin] | None = None
    error: str | None = None
    location: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    subscriptions: tuple[str, ...] = ()
    load_seconds: float = 0.0
    module: Module | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def metadata(self) -> Metadata | None:
        return self.plugin.metadata if self.plugin is not None else None


def load_location(location: Sequence[str]) -> Any:
    """Import the object at ``location`` (what a child process does to load its plugin)."""
    kind = location[0]
    if kind == "module":
        module_name, _, attribute = location[1].partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
        return obj
    if kind == "path":
        path = Path(location[1])
        module = _import_path(path)
        return getattr(module, location[2])
    raise InvalidConfig("location", f"unknown plugin location {kind!r}")


def _import_path(path: Path) -> Any:
    stem = path.parent.name if path.name == "__init__.py" else path.stem
    name = f"triotok_plugins_dir.{stem}"
    if name in sys.modules:
        return sys.modules[name]
    search = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def check_plugin(cls: Any, *, expected_name: str | None = None) -> tuple[Module, float]:
    """Validate a plugin class; return its Module and the seconds reading it took.

    Raises :class:`PluginRefused` with the reason for anything that would not
    run: not a Plugin subclass, an API range without this platform's
    version, a Module that does not match its capabilities or isolation.
    """
    name = expected_name or "?"
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise PluginRefused(name, f"{cls!r} is not a triotok.plugins.Plugin subclass")
    metadata = getattr(cls, "metadata", None)
    if not isinstance(metadata, Metadata):
        raise PluginRefused(name, "its class declares no metadata = Metadata(...)")
    name = metadata.name
    if expected_name is not None and expected_name != name:
        raise PluginRefused(expected_name, f"the entry point is named differently from {name!r}")
    if not metadata.api_range.contains(Version.parse(API_VERSION)):
        raise PluginRefused(
            name,
            f"needs plugin API {metadata.api}; this platform implements {API_VERSION}",
        )
    if cls.isolation not in ("inline", "process"):
        raise PluginRefused(name, f"isolation {cls.isolation!r} is neither 'inline' nor 'process'")
    started = time.perf_counter()
    try:
        module = cls().module()
    except Exception as exc:
        raise PluginRefused(
            name, f"reading its Module failed: {type(exc).__name__}: {exc}"
        ) from exc
    elapsed = time.perf_counter() - started
    if not isinstance(module, Module):
        raise PluginRefused(name, "module() must return a triotok.modules.Module")
    _check_module(name, cls, module)
    return module, elapsed


def _check_module(name: str, cls: type[Plugin], module: Module) -> None:
    caps = cls.capabilities
    if module.name != name:
        raise PluginRefused(name, f"its Module is named {module.name!r}, not {name!r}")
    if module.path is not None:
        raise PluginRefused(name, "a plugin's Module lives under /app/plugins; drop path=")
    endpoints = module.route_table()
    for endpoint in endpoints:
        if not isinstance(endpoint, Endpoint):
            raise PluginRefused(name, "a plugin's routes are triotok.plugins.Endpoint declarations")
    if endpoints and not caps.routes:
        raise PluginRefused(name, "it declares routes but does not ask for routes=True")
    keys = [e.key for e in endpoints]
    if len(keys) != len(set(keys)):
        raise PluginRefused(name, "two endpoints share a method and path")
    for subscription in module.subscriptions:
        if not caps.may_subscribe(subscription.pattern):
            raise PluginRefused(
                name, f"it subscribes to {subscription.pattern!r}, outside its capabilities"
            )
    for grant in module.permissions:
        if grant.permission.resource != f"plugin.{name}":
            raise PluginRefused(
                name, f"it may only declare plugin.{name}:* permissions, not {grant.permission}"
            )
    if cls.isolation == "process":
        for what, present in (
            ("migrations", module.migrations),
            ("setup", module.setup),
            ("health checks", module.health),
        ):
            if present:
                raise PluginRefused(
                    name,
                    f"a process-isolated plugin declares no {what}: it reaches the platform"
                    " through the plugin API only (use isolation='inline' for trusted code)",
                )


def _candidate(
    cls: Any, source: str, location: tuple[str, ...], expected: str | None
) -> Discovered:
    label = expected or getattr(getattr(cls, "metadata", None), "name", None) or "?"
    try:
        module, elapsed = check_plugin(cls, expected_name=expected)
    except PluginRefused as exc:
        return Discovered(exc.plugin if exc.plugin != "?" else label, source, error=exc.message)
    return Discovered(
        cls.metadata.name,
        source,
        plugin=cls,
        location=location,
        endpoints=tuple(module.route_table()),
        subscriptions=tuple(s.pattern for s in module.subscriptions),
        load_seconds=elapsed,
        module=module,
    )


def _failed(name: str, source: str, exc: BaseException) -> Discovered:
    return Discovered(name, source, error=f"import failed: {type(exc).__name__}: {exc}")


def _from_entry_points(group: str) -> Iterable[Discovered]:
    try:
        points = importlib.metadata.entry_points(group=group)
    except Exception as exc:  # a broken distribution's metadata
        yield _failed("?", f"entry points of {group}", exc)
        return
    for point in sorted(points, key=lambda p: p.name):
        dist = getattr(point.dist, "name", None) or "?"
        source = f"entry point {point.name} = {point.value} ({dist})"
        try:
            cls = point.load()
        except Exception as exc:
            yield _failed(point.name, source, exc)
            continue
        yield _candidate(cls, source, ("module", point.value), point.name)


def _from_directory(directory: Path) -> Iterable[Discovered]:
    if not directory.is_dir():
        yield Discovered(
            "?", f"directory {directory}", error="the plugins directory does not exist"
        )
        return
    paths = sorted(
        [p for p in directory.glob("*.py") if not p.name.startswith("_")]
        + [p / "__init__.py" for p in directory.iterdir() if (p / "__init__.py").is_file()]
    )
    for path in paths:
        stem = path.parent.name if path.name == "__init__.py" else path.stem
        source = f"directory {path}"
        try:
            cls = getattr(_import_path(path), DIRECTORY_ATTRIBUTE)
        except Exception as exc:
            yield _failed(stem, source, exc)
            continue
        yield _candidate(cls, source, ("path", str(path), DIRECTORY_ATTRIBUTE), None)


def discover(
    builtin: Sequence[type[Plugin]] = (),
    *,
    group: str | None = ENTRY_POINT_GROUP,
    directory: Path | str | None = None,
) -> list[Discovered]:
    """Every candidate, in order: built-in, entry points (by name), the directory (by file).

    A name taken by an earlier candidate (even a failed one) makes a later
    one ``failed`` ("duplicate"); the first keeps it.
    """
    found: list[Discovered] = []
    for cls in builtin:
        found.append(
            _candidate(cls, "built-in", ("module", f"{cls.__module__}:{cls.__qualname__}"), None)
        )
    if group is not None:
        found.extend(_from_entry_points(group))
    if directory is not None:
        found.extend(_from_directory(Path(directory)))
    seen: dict[str, Discovered] = {}
    out: list[Discovered] = []
    for item in found:
        first = seen.get(item.name)
        if first is not None and item.name != "?":
            out.append(
                Discovered(item.name, item.source, error=f"duplicate name: {first.source} has it")
            )
            continue
        seen.setdefault(item.name, item)
        out.append(item)
    return out
