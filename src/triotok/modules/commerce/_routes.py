"""The commerce module's routes: ``/api/products`` and their stock.

Every command goes to the product's entity (``/app/modules/commerce/products``),
so commands to one product are serialised by its mailbox; ``GET`` by id
answers the entity's freshly read state (the write side), lists read the
store in one query. Responses carry the product's version as a strong
``ETag``; ``PATCH`` and ``DELETE`` need it back (``If-Match`` or ``version``
in the body: 428 without, 412 when it is stale); ``GET`` honours
``If-None-Match`` (304). ``DELETE`` archives (products are never deleted:
orders refer to them) and answers the archived product. Stock adjustments
are deltas and need no version. The only file of the module that imports
``triotok.http``.
"""

from __future__ import annotations

import uuid
from typing import Any

from msgspec import UNSET

from ..._exceptions import InvalidInput, PreconditionRequired
from ...http import Call, Reply, Route
from .._permissions import Permission
from . import _models as models
from ._entity import (
    AdjustInventory,
    ArchiveProduct,
    CreateProduct,
    GetProduct,
    UpdateProduct,
    Who,
)
from ._lifecycle import Status
from ._model import (
    Product,
    check_attributes,
    check_currency,
    check_price,
    check_sku,
    check_title,
    parse_product_id,
)
from ._service import ProductService

__all__ = ("ROUTES",)


def _who(call: Call) -> Who:
    return Who(call.principal, call.traceparent)


def _service(call: Call) -> ProductService:
    return call.services.context.get(ProductService)


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


def _reply(product: Product, status: int = 200, **headers: str) -> Reply:
    return Reply(product.as_dict(), status, {"ETag": product.etag, **headers})


# The cursor is opaque to clients: today the last id of the page, as 32 hex
# digits. Any such value is a valid position (keyset: "ids after this one").
def _encode_cursor(after: str | None) -> str | None:
    return None if after is None else uuid.UUID(after).hex


def _decode_cursor(cursor: str) -> str:
    try:
        return str(uuid.UUID(hex=cursor))
    except ValueError:
        raise InvalidInput("cursor is not one this API handed out", field="cursor") from None


# ---------------------------------------------------------------- handlers


async def create_product(call: Call) -> Reply:
    body: models.ProductCreate = call.body
    command = CreateProduct(
        sku=check_sku(body.sku),
        title=check_title(body.title),
        price=check_price(body.price),
        currency=check_currency(body.currency),
        who=_who(call),
        description=body.description,
        attributes=check_attributes(body.attributes),
    )
    product = await _service(call).ask(_tenant(call), str(uuid.uuid4()), command)
    return _reply(product, 201, Location=f"/api/products/{product.id}")


async def list_products(call: Call) -> dict[str, Any]:
    query: models.ProductQuery = call.query
    after = _decode_cursor(query.cursor) if query.cursor is not None else ""
    page = await _service(call).list(
        _tenant(call), status=query.status, sku=query.sku, after=after, limit=query.limit
    )
    return {
        "items": [p.as_dict() for p in page.products],
        "next_cursor": _encode_cursor(page.after),
    }


async def get_product(call: Call) -> Reply:
    product_id = parse_product_id(call.params["product_id"])
    product = await _service(call).ask(_tenant(call), product_id, GetProduct())
    if product.etag in _etags(call.headers.get("If-None-Match")):
        return Reply(b"", 304, {"ETag": product.etag})
    return _reply(product)


async def update_product(call: Call) -> Reply:
    body: models.ProductUpdate = call.body
    product_id = parse_product_id(call.params["product_id"])
    expected = _expected_version(call, None if body.version is UNSET else body.version)
    changes: dict[str, Any] = {}
    if body.sku is not UNSET:
        changes["sku"] = check_sku(body.sku)
    if body.title is not UNSET:
        changes["title"] = check_title(body.title)
    if body.description is not UNSET:
        changes["description"] = body.description
    if body.price is not UNSET:
        changes["price"] = check_price(body.price)
    if body.currency is not UNSET:
        changes["currency"] = check_currency(body.currency)
    if body.attributes is not UNSET:
        changes["attributes"] = check_attributes(body.attributes)
    if body.status is not UNSET:
        changes["status"] = Status(body.status)
    command = UpdateProduct(changes, _who(call), expected)
    return _reply(await _service(call).ask(_tenant(call), product_id, command))


async def archive_product(call: Call) -> Reply:
    product_id = parse_product_id(call.params["product_id"])
    command = ArchiveProduct(_who(call), _expected_version(call, None))
    return _reply(await _service(call).ask(_tenant(call), product_id, command))


async def adjust_inventory(call: Call) -> Reply:
    body: models.InventoryAdjustment = call.body
    product_id = parse_product_id(call.params["product_id"])
    command = AdjustInventory(body.delta, body.reason, _who(call))
    return _reply(await _service(call).ask(_tenant(call), product_id, command))


# ---------------------------------------------------------------- preconditions


def _etags(header: str | None) -> set[str]:
    if header is None:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` names (``None`` without the header or for ``*``)."""
    if header is None or header.strip() == "*":
        return None
    tags = _etags(header)
    if len(tags) != 1:
        raise InvalidInput('If-Match must name one version, e.g. If-Match: "3"', field="If-Match")
    [tag] = tags
    digits = tag.strip('"')
    if not (tag.startswith('"') and tag.endswith('"') and digits.isascii() and digits.isdigit()):
        raise InvalidInput('If-Match must name one version, e.g. If-Match: "3"', field="If-Match")
    return int(digits)


def _expected_version(call: Call, in_body: int | None) -> int:
    """What ``PATCH``/``DELETE`` compare: ``If-Match`` or ``version``; 428 if neither."""
    from_header = _if_match(call.headers.get("If-Match"))
    if from_header is not None and in_body is not None and from_header != in_body:
        raise InvalidInput("If-Match and version name different versions", field="version")
    expected = from_header if from_header is not None else in_body
    if expected is None:
        raise PreconditionRequired(
            'send the version you read (If-Match: "<version>" or "version" in the body)'
        )
    return expected


# ---------------------------------------------------------------- the table


def _p(action: str) -> Permission:
    return Permission("products", action)


_PRODUCT_PATH = "/api/products/<product_id>"
_PRODUCT_ID = {
    "product_id": {
        "type": "string",
        "format": "uuid",
        "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    }
}
_ERRORS = (404, 409, 412)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/products",
        create_product,
        "Create a product (a draft without stock)",
        "products",
        _p("create"),
        operation_id="createProduct",
        status=201,
        body=models.ProductCreate,
        response=models.Product,
        errors=(409,),
    ),
    Route(
        "GET",
        "/api/products",
        list_products,
        "List products (status, sku; keyset pagination with an opaque cursor)",
        "products",
        _p("read"),
        operation_id="listProducts",
        query=models.ProductQuery,
        response=models.ProductPage,
    ),
    Route(
        "GET",
        _PRODUCT_PATH,
        get_product,
        "Read a product and its stock (ETag; If-None-Match answers 304)",
        "products",
        _p("read"),
        operation_id="getProduct",
        path_schemas=_PRODUCT_ID,
        response=models.Product,
        errors=(404,),
    ),
    Route(
        "PATCH",
        _PRODUCT_PATH,
        update_product,
        "Change a product's fields or status (If-Match or version required)",
        "products",
        _p("update"),
        operation_id="updateProduct",
        path_schemas=_PRODUCT_ID,
        body=models.ProductUpdate,
        response=models.Product,
        errors=(*_ERRORS, 428),
    ),
    Route(
        "DELETE",
        _PRODUCT_PATH,
        archive_product,
        "Archive a product (never deleted: orders refer to it; If-Match required)",
        "products",
        _p("delete"),
        operation_id="archiveProduct",
        path_schemas=_PRODUCT_ID,
        response=models.Product,
        errors=(*_ERRORS, 428),
    ),
    Route(
        "POST",
        f"{_PRODUCT_PATH}/inventory",
        adjust_inventory,
        "Adjust the units on hand by a delta (409 below the reserved units)",
        "products",
        _p("update"),
        operation_id="adjustProductInventory",
        path_schemas=_PRODUCT_ID,
        body=models.InventoryAdjustment,
        response=models.Product,
        errors=(404, 409),
    ),
)
