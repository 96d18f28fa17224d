"""Constants more than one layer needs, defined once.

Plain values with no imports, so any layer (the core included) may use them.
"""

from __future__ import annotations

__all__ = ("DEFAULT_STORE_URL", "SEGMENT_PATTERN", "TENANT_ID_PATTERN")

#: The default store: an embedded SQLite file under the working directory.
DEFAULT_STORE_URL = "sqlite:///triotok-data/triotok.db"

#: Tenant ids: no path separators, dots, spaces or quotes (no traversal, no injection).
TENANT_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"

#: Names that become path segments or identifiers (actors, supervisors, bus
#: subscribers and groups, inbox consumers): letters, digits, ``_ . -``; no ``/``.
SEGMENT_PATTERN = r"[A-Za-z0-9_.\-]{1,128}"
