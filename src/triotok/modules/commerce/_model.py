"""Products: the record, its validation rules, and the shapes stock levels take.

A product has a sku unique per tenant, a title and description, a price in
integer minor units of an ISO 4217 currency, a lifecycle status, a small flat
map of attributes (facets: ``str -> str | int | bool``) and its inventory:
``on_hand`` (units in the warehouse), ``reserved`` (units promised to orders
not yet shipped) and the derived ``available = on_hand - reserved``.

Invariant, kept by every write (conditional ``UPDATE``\\ s, and a ``CHECK`` in
the table as the last line): ``0 <= reserved <= on_hand``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..._exceptions import InvalidInput
from ..._text import NAME_PATTERN
from ._currencies import CURRENCIES
from ._events import ProductSnapshot
from ._lifecycle import Status

__all__ = (
    "ATTRIBUTE_KEY_PATTERN",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_INT",
    "MAX_ATTRIBUTE_TEXT",
    "MAX_DELTA",
    "MAX_DESCRIPTION",
    "MAX_PRICE",
    "SKU_PATTERN",
    "AttributeValue",
    "Product",
    "check_attributes",
    "check_currency",
    "check_price",
    "check_sku",
    "check_title",
    "parse_product_id",
)

#: Letters, digits and ``._-``, starting with a letter or digit; case is kept.
SKU_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: Attribute names: short lowercase identifiers.
ATTRIBUTE_KEY_PATTERN = r"[a-z][a-z0-9_]{0,31}"
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_TEXT = 200
#: Integers in attributes stay exact in every JSON client.
MAX_ATTRIBUTE_INT = 2**53 - 1
#: The largest price (minor units): a trillion cents is ten billion.
MAX_PRICE = 10**12
#: The largest change of ``on_hand`` one adjustment may make, either way.
MAX_DELTA = 10**9
MAX_DESCRIPTION = 10_000

AttributeValue = str | int | bool

_SKU = re.compile(SKU_PATTERN)
_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def check_sku(value: object) -> str:
    if not isinstance(value, str) or not _SKU.fullmatch(value):
        shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(f"sku {shown} is not a sku ({SKU_PATTERN})", field="sku")
    return value


def check_title(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 300 or not _NAME.fullmatch(value):
        raise InvalidInput(
            "title must be 1-300 characters without control or format characters", field="title"
        )
    return value


def check_currency(value: object) -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        shown = repr(value)[:20] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(f"currency {shown} is not an active ISO 4217 code", field="currency")
    return value


def check_price(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE:
        raise InvalidInput(
            f"price is an integer of minor units from 0 to {MAX_PRICE}", field="price"
        )
    return value


def check_attributes(value: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """A copy of ``value`` if it is a valid attribute map, else :class:`InvalidInput`."""
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", field="attributes")
    checked: dict[str, AttributeValue] = {}
    for key, item in sorted(value.items()):
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInput(
                f"attribute name {str(key)[:40]!r} is not {ATTRIBUTE_KEY_PATTERN}",
                field="attributes",
            )
        where = f"attributes.{key}"
        if isinstance(item, bool):
            pass
        elif isinstance(item, int):
            if abs(item) > MAX_ATTRIBUTE_INT:
                raise InvalidInput(f"{where} is out of range (|n| <= 2**53 - 1)", field=where)
        elif isinstance(item, str):
            if len(item) > MAX_ATTRIBUTE_TEXT or not _NAME.fullmatch(item):
                raise InvalidInput(
                    f"{where} must be at most {MAX_ATTRIBUTE_TEXT} characters without"
                    " control or format characters",
                    field=where,
                )
        else:
            raise InvalidInput(f"{where} must be a string, an integer or a boolean", field=where)
        checked[key] = item
    return checked


def parse_product_id(value: str) -> str:
    """The canonical form of a product id (a UUID), or :class:`InvalidInput`."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput(f"{value[:60]!r} is not a product id (a UUID)", field="id") from None


@dataclass(frozen=True, slots=True)
class Product:
    """A product as stored; ``version`` grows by one with every change, stock included."""

    tenant_id: str
    id: str
    sku: str
    title: str
    price: int
    currency: str
    status: Status
    created_at: datetime
    updated_at: datetime
    description: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    on_hand: int = 0
    reserved: int = 0
    version: int = 1

    @property
    def available(self) -> int:
        """Units that can still be reserved."""
        return self.on_hand - self.reserved

    @property
    def etag(self) -> str:
        """The strong entity tag of this version (what ``If-Match`` compares)."""
        return f'"{self.version}"'

    def with_changes(self, **changes: Any) -> Product:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "title": self.title,
            "description": self.description,
            "price": self.price,
            "currency": self.currency,
            "status": self.status.value,
            "attributes": dict(self.attributes),
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }

    def snapshot(self) -> ProductSnapshot:
        return ProductSnapshot(
            product_id=uuid.UUID(self.id),
            sku=self.sku,
            title=self.title,
            description=self.description,
            price=self.price,
            currency=self.currency,
            status=self.status.value,
            attributes=dict(self.attributes),
            on_hand=self.on_hand,
            reserved=self.reserved,
            created_at=self.created_at,
            updated_at=self.updated_at,
            version=self.version,
        )
