"""The event contract: the shape of every event type the project registers.

``event_contract.json`` (next to this file) is the checked-in snapshot of
``default_registry.contract()``. Changing a payload's fields without bumping
its version (and adding an upcaster) fails here, because consumers of old
bytes would silently get the new shape.

To change an event deliberately:

1. bump its ``version=`` and add an ``@upcaster`` from the previous version;
2. regenerate the snapshot and review the diff::

       TRIOTOK_UPDATE_CONTRACT=1 .venv/bin/pytest tests/transport/test_contract.py

3. commit the snapshot together with the change.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import Any

import triotok
from triotok.transport import default_registry

SNAPSHOT = Path(__file__).with_name("event_contract.json")


def project_contract() -> dict[str, Any]:
    """The contract of triotok's own event types, after importing every public package.

    Types defined outside ``triotok`` (tests, plugins) are left out, so the
    result does not depend on which other test modules were imported first.
    """
    for info in pkgutil.walk_packages(triotok.__path__, "triotok."):
        if info.ispkg and not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)
    return default_registry.contract(package="triotok")


def explain(snapshot: dict[str, Any], current: dict[str, Any]) -> str:
    lines = []
    for event_type in sorted(snapshot.keys() | current.keys()):
        old, new = snapshot.get(event_type), current.get(event_type)
        if old == new:
            continue
        if old is None:
            lines.append(f"new event type {event_type} v{new['version']}")  # type: ignore[index]
        elif new is None:
            lines.append(f"event type {event_type} disappeared (old bytes could not be decoded)")
        elif old["version"] == new["version"]:
            lines.append(
                f"{event_type} v{new['version']} changed shape without a version bump: "
                f"{old['fields']} -> {new['fields']}"
            )
        else:
            lines.append(f"{event_type} moved from v{old['version']} to v{new['version']}")
    return "\n".join(lines)


def test_contract_matches_the_snapshot() -> None:
    current = project_contract()
    if os.environ.get("TRIOTOK_UPDATE_CONTRACT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    snapshot = json.loads(SNAPSHOT.read_text())
    assert current == snapshot, (
        "the event contract changed:\n"
        + explain(snapshot, current)
        + "\nSee the docstring of tests/transport/test_contract.py to update it deliberately."
    )


def test_explain_names_a_shape_change_without_version_bump() -> None:
    old = {"product.created": {"version": 1, "fields": {"sku": "str"}}}
    same_version = {"product.created": {"version": 1, "fields": {"sku": "UUID"}}}
    bumped = {"product.created": {"version": 2, "fields": {"sku": "UUID"}}}
    assert "changed shape without a version bump" in explain(old, same_version)
    assert "moved from v1 to v2" in explain(old, bumped)
    assert "new event type product.created v1" in explain({}, old)
    assert "disappeared" in explain(old, {})


def test_every_view_fits_the_event_it_reads() -> None:
    # Consumers read other modules' events through views (event_view): each
    # field a view reads must still be in the producer's current shape.
    project_contract()
    assert default_registry.check_views(package="triotok") == []
    viewed = {schema.event_type for schema in default_registry.views()}
    assert {"order.placed", "inventory.reserved", "inventory.rejected"} <= viewed
