"""The plugin API's surface is pinned, and its version follows semver against the pin.

``plugin_api.json`` (next to this file) records :data:`API_VERSION` and the
surface plugins program against: every name of :data:`PLUGIN_API`, with
each class's public methods and fields and each function's signature. A
change to that surface fails here until it is deliberate:

* only additions: ``API_VERSION``'s minor must grow (plugins written for the
  old version keep working);
* a removal or a change of an existing entry: its major must grow;
* then regenerate and review the diff::

      TRIOTOK_UPDATE_CONTRACT=1 .venv/bin/pytest tests/plugins/test_api_contract.py
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any

import triotok.plugins as api
from triotok.plugins import API_VERSION, Version

SNAPSHOT = Path(__file__).with_name("plugin_api.json")

#: What a plugin uses (the manager's names are the platform's, pinned by test_exports).
PLUGIN_API = (
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "NAME_PATTERN",
    "CapabilityDenied",
    "Capabilities",
    "Conflict",
    "Endpoint",
    "HttpReply",
    "InvalidInput",
    "Isolation",
    "Limits",
    "Metadata",
    "NotFound",
    "Plugin",
    "PluginContext",
    "PluginCrashed",
    "PluginError",
    "PluginRequest",
    "PluginResponse",
    "PluginTimeout",
    "PluginUnavailable",
    "Scope",
    "Storage",
    "Version",
    "VersionRange",
    "current_scope",
)


def _describe(obj: Any) -> Any:
    if isinstance(obj, str | int):
        return repr(obj)
    if inspect.isfunction(obj):
        return str(inspect.signature(obj))
    if inspect.isclass(obj):
        out: dict[str, Any] = {"bases": [b.__name__ for b in obj.__bases__]}
        if dataclasses.is_dataclass(obj):
            out["fields"] = {
                f.name: f"{f.type} = {f.default!r}"
                if f.default is not dataclasses.MISSING
                else str(f.type)
                for f in dataclasses.fields(obj)
            }
        members = {}
        for name, value in vars(obj).items():
            if name.startswith("_") and name != "__init__":
                continue
            if inspect.isfunction(value):
                members[name] = str(inspect.signature(value))
            elif isinstance(value, property):
                members[name] = "property"
            elif isinstance(value, classmethod | staticmethod):
                members[name] = str(inspect.signature(value.__func__))
        if issubclass(obj, BaseException):
            out["code"] = getattr(obj, "code", None)
        out["members"] = members
        return out
    return repr(obj)


def surface() -> dict[str, Any]:
    return {name: _describe(getattr(api, name)) for name in PLUGIN_API}


def test_the_plugin_api_is_the_pinned_one() -> None:
    current = {"version": API_VERSION, "surface": surface()}
    if os.environ.get("TRIOTOK_UPDATE_CONTRACT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    old, new = pinned["surface"], current["surface"]
    removed_or_changed = sorted(k for k in old if old[k] != new.get(k))
    added = sorted(k for k in new if k not in old)
    was, now = Version.parse(pinned["version"]), Version.parse(API_VERSION)
    if removed_or_changed:
        assert now.major > was.major, (
            f"{removed_or_changed} changed or went away: a new major API_VERSION, then regenerate"
        )
    elif added:
        assert (now.major, now.minor) > (was.major, was.minor), (
            f"{added} are new: a new minor API_VERSION, then regenerate"
        )
    assert current == pinned, "regenerate plugin_api.json (see this module's docstring)"


def test_every_plugin_api_name_is_exported() -> None:
    assert set(PLUGIN_API) <= set(api.__all__)
