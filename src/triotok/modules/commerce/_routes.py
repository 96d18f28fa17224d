"""The commerce module's routes: ``/api/products`` and their stock.

Every command goes to the product's entity (``/app/modules/commerce/products``),
so commands to one product are serialised by its mailbox; ``GET`` by id
answers the entity's freshly read state (the write side); the list (``GET
/api/products``) is the search module's, served from its read model.
Responses carry the product's version as a strong ``ETag``; a restricted
reader (the ``storefront`` role) sees active products only (others are 404
and never listed). ``PATCH`` and ``DELETE`` need it back (``If-Match`` or
``version`` in the body: 428 without, 412 when it is stale); ``GET`` honours
``If-None-Match`` (304). ``DELETE`` archives (products are never deleted:
orders refer to them) and answers the archived product. Stock adjustments
are deltas and need no version. The only file of the module that imports
``triotok.http``.
"""

from __future__ import annotations

import uuid
from typing import Any

from msgspec import UNSET

from ..._exceptions import NotFound
from ...http import (
    UUID_PATH_SCHEMA,
    Call,
    Reply,
    Route,
    expected_version,
    not_modified,
)
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


async def get_product(call: Call) -> Reply:
    product_id = parse_product_id(call.params["product_id"])
    product = await _service(call).ask(_tenant(call), product_id, GetProduct())
    if call.restricted and product.status is not Status.ACTIVE:
        raise NotFound(f"no product {product_id}")
    if (unchanged := not_modified(call, product.etag)) is not None:
        return unchanged
    return _reply(product)


async def update_product(call: Call) -> Reply:
    body: models.ProductUpdate = call.body
    product_id = parse_product_id(call.params["product_id"])
    expected = expected_version(call, None if body.version is UNSET else body.version)
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
    command = ArchiveProduct(_who(call), expected_version(call, None))
    return _reply(await _service(call).ask(_tenant(call), product_id, command))


async def adjust_inventory(call: Call) -> Reply:
    body: models.InventoryAdjustment = call.body
    product_id = parse_product_id(call.params["product_id"])
    command = AdjustInventory(body.delta, body.reason, _who(call))
    return _reply(await _service(call).ask(_tenant(call), product_id, command))


# ---------------------------------------------------------------- the table


def _p(action: str) -> Permission:
    return Permission("products", action)


_PRODUCT_PATH = "/api/products/<product_id>"
_PRODUCT_ID = {"product_id": UUID_PATH_SCHEMA}
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
        _PRODUCT_PATH,
        get_product,
        "Read a product and its stock (ETag; If-None-Match answers 304)",
        "products",
        _p("read"),
        operation_id="getProduct",
        path_schemas=_PRODUCT_ID,
        response=models.Product,
        errors=(404,),
        criticality="critical",
        serve_stale=True,
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
