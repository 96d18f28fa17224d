"""Public names report their public home (trio's ``fixup_module_metadata``).

A class defined in ``triotok.actors._ref`` and exported by ``triotok.actors``
should say ``triotok.actors.ActorRef`` in reprs, tracebacks and docs, not the
private module it happens to live in. Each package ``__init__`` calls
:func:`fixup_module_metadata` on its namespace after its re-exports.

A name's home is the lowest public package that exports it: packages are
imported bottom-up (a package's ``__init__`` finishes before the one above
it runs), and only names still reporting a private module are claimed, so
``CircuitOpen`` belongs to :mod:`triotok.resilience` even though
:mod:`triotok.supervision` re-exports it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ("fixup_module_metadata", "is_private_module")


def is_private_module(name: str) -> bool:
    """Whether a dotted module name has a private component (``triotok.actors._ref``)."""
    return any(part.startswith("_") for part in name.split("."))


def fixup_module_metadata(module_name: str, namespace: Mapping[str, Any]) -> None:
    """Set ``__module__`` of the classes and functions ``namespace.__all__`` lists.

    Only objects of ours (``triotok.*``) that still report a private module are
    changed; the methods and nested classes of a class follow it.
    """
    seen: set[int] = set()

    def fix(obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if not isinstance(mod, str) or not mod.startswith("triotok."):
            return
        if not is_private_module(mod):
            return
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):  # pragma: no cover  # a builtin-like object
            return
        if isinstance(obj, type):
            # Only what the class body defined (methods, nested classes), not
            # another public name it merely refers to.
            inner = f"{obj.__qualname__}."
            for value in vars(obj).values():
                if getattr(value, "__qualname__", "").startswith(inner):
                    fix(value)

    for name in namespace.get("__all__", ()):
        obj = namespace.get(name)
        if isinstance(obj, type) or callable(obj):
            fix(obj)
