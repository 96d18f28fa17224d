"""The commerce module's HTTP models: what ``/api/products`` reads and answers.

msgspec Structs, declared once: the HTTP layer validates request bodies and
queries with them, and ``/openapi.json`` publishes them as the components
``Product``, ``ProductCreate``, ``ProductUpdate``,
``InventoryAdjustment``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from ..._text import NAME_PATTERN, whole_match
from ._currencies import CURRENCIES, CURRENCY_PATTERN
from ._model import (
    ATTRIBUTE_KEY_PATTERN,
    MAX_ATTRIBUTE_INT,
    MAX_ATTRIBUTE_TEXT,
    MAX_ATTRIBUTES,
    MAX_DELTA,
    MAX_DESCRIPTION,
    MAX_PRICE,
    SKU_PATTERN,
)

__all__ = (
    "InventoryAdjustment",
    "Product",
    "ProductCreate",
    "ProductUpdate",
)

Sku = Annotated[
    str,
    Meta(
        pattern=whole_match(SKU_PATTERN), examples=["MUG-BLUE-350"], description="Unique per tenant"
    ),
]
Title = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=300,
        pattern=NAME_PATTERN,
        description="No control or invisible format characters",
    ),
]
Description = Annotated[str, Meta(max_length=MAX_DESCRIPTION)]
Price = Annotated[
    int, Meta(ge=0, le=MAX_PRICE, description="In minor units of the currency (cents)")
]
Currency = Annotated[
    str,
    Meta(
        pattern=whole_match(CURRENCY_PATTERN),
        examples=["EUR"],
        description="An active ISO 4217 code",
        extra_json_schema={"enum": sorted(CURRENCIES)},
    ),
]
AttributeKey = Annotated[str, Meta(pattern=whole_match(ATTRIBUTE_KEY_PATTERN))]
AttributeText = Annotated[str, Meta(max_length=MAX_ATTRIBUTE_TEXT, pattern=NAME_PATTERN)]
AttributeInt = Annotated[int, Meta(ge=-MAX_ATTRIBUTE_INT, le=MAX_ATTRIBUTE_INT)]
Attributes = Annotated[
    dict[AttributeKey, AttributeText | AttributeInt | bool],
    Meta(max_length=MAX_ATTRIBUTES, description="Facets: a flat map of names to str, int or bool"),
]
Status = Literal["draft", "active", "archived"]
ProductId = Annotated[
    str,
    Meta(
        extra_json_schema={"format": "uuid"},
        examples=["6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70"],
    ),
]
Version = Annotated[int, Meta(ge=1, le=2**62)]

_PRODUCT: dict[str, Any] = {
    "id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70",
    "sku": "MUG-BLUE-350",
    "title": "Blue mug, 350 ml",
    "description": "Stoneware, dishwasher safe.",
    "price": 1290,
    "currency": "EUR",
    "status": "active",
    "attributes": {"color": "blue", "volume_ml": 350, "dishwasher_safe": True},
    "on_hand": 40,
    "reserved": 3,
    "available": 37,
    "created_at": "2024-05-01T12:00:00+00:00",
    "updated_at": "2024-05-01T12:00:00+00:00",
    "version": 4,
}


class Product(Struct, frozen=True):
    """A product and its stock; ``version`` is its ``ETag`` (stock changes advance it)."""

    id: ProductId
    sku: str
    title: str
    description: str
    price: int
    currency: str
    status: Status
    attributes: dict[str, str | int | bool]
    on_hand: int
    reserved: int
    available: int
    created_at: datetime
    updated_at: datetime
    version: int

    EXAMPLE: ClassVar[dict[str, Any]] = _PRODUCT


class ProductCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A new product (created as a draft, without stock)."""

    sku: Sku
    title: Title
    price: Price
    currency: Currency
    description: Description = ""
    attributes: Attributes = {}

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "sku": "MUG-BLUE-350",
        "title": "Blue mug, 350 ml",
        "price": 1290,
        "currency": "EUR",
        "attributes": {"color": "blue", "volume_ml": 350},
    }


class ProductUpdate(Struct, frozen=True, forbid_unknown_fields=True):
    """Changes to a product; the version it is based on goes here or in ``If-Match``.

    ``status`` moves it along its lifecycle (``active`` makes it orderable;
    ``draft`` takes it back, or restores an archived product). Archiving is
    ``DELETE``.
    """

    sku: Sku | UnsetType = UNSET
    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    price: Price | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET
    status: Literal["draft", "active"] | UnsetType = UNSET
    version: Version | UnsetType = UNSET

    EXAMPLE: ClassVar[dict[str, Any]] = {"status": "active", "price": 1190, "version": 1}


class InventoryAdjustment(Struct, frozen=True, forbid_unknown_fields=True):
    """A change of the units on hand: a delivery (``delta`` > 0), a count or a write-off."""

    delta: Annotated[int, Meta(ge=-MAX_DELTA, le=MAX_DELTA)]
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]

    EXAMPLE: ClassVar[dict[str, Any]] = {"delta": 40, "reason": "delivery 2024-05-01"}
