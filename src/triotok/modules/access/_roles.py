"""The base roles a key can hold, and the access module's permissions."""

from __future__ import annotations

import enum

__all__ = ("Role",)


class Role(enum.StrEnum):
    """What a key may do inside its tenant: a name in the application's role table.

    Modules grant their permissions to these roles (``Grant(permission,
    roles=("admin",))``); the role table is the union of those grants.
    """

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    #: A shop front end: reads the public catalogue (active products, published
    #: content), places orders and reads only the orders its own key placed.
    STOREFRONT = "storefront"
