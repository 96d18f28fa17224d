"""The orders module's routes: ``/api/orders`` and the transitions of an order.

Every command goes to the order's entity (``/app/modules/orders/orders``), so
commands to one order are serialised by its mailbox; ``GET`` by id answers
the entity's freshly read state, lists read the store in one query (newest
first). Responses carry the order's version as a strong ``ETag``; ``GET``
honours ``If-None-Match`` (304); the transitions accept ``If-Match`` (412
when stale) but do not need it: the lifecycle decides (409
``invalid_transition``).

``POST /api/orders`` answers the ``pending`` order at once (201), or, with
``Prefer: wait=<seconds>`` (at most 10), once commerce answered: confirmed
and priced, or cancelled (``Preference-Applied``). ``POST /api/orders`` and
``POST /api/orders/{id}/pay`` take an ``Idempotency-Key``; the key an order
was placed with is stored with it, so even a retry after the node died
between placing the order and storing the answer finds the first order.

Payment errors are the module's words for HTTP: a declined payment is 402
``payment_declined``, an unavailable provider (or an open breaker) 503
``payment_unavailable`` with ``Retry-After``; either way the order stays
``confirmed``. A restricted reader (the ``storefront`` role) sees only the
orders its own key placed (others are 404 and never listed). The only file of
the module that imports ``triotok.http``.
"""

from __future__ import annotations

import re
from typing import Any

from ..._exceptions import NotFound
from ...http import (
    UUID_PATH_SCHEMA,
    Call,
    Reply,
    Route,
    decode_cursor,
    encode_cursor,
    if_match,
    not_modified,
)
from .._commands import Who
from .._permissions import Permission
from . import _models as models
from ._entity import CancelOrder, DeliverOrder, GetOrder, PayOrder, PlaceOrder, ShipOrder
from ._lifecycle import Order
from ._model import (
    as_dict,
    check_items,
    check_reason,
    check_tracking_number,
    new_order_id,
    parse_order_id,
)
from ._service import OrderService

__all__ = ("MAX_WAIT", "ROUTES")

#: The longest ``Prefer: wait`` honoured, in seconds.
MAX_WAIT = 10
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,6})(?:$|[,;\s])")


def _who(call: Call) -> Who:
    return Who(call.principal, call.traceparent)


def _service(call: Call) -> OrderService:
    return call.services.context.get(OrderService)


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


def _reply(order: Order[Any], status: int = 200, **headers: str) -> Reply:
    return Reply(as_dict(order), status, {"ETag": order.etag, **headers})


def _wait(call: Call) -> int | None:
    """The seconds of ``Prefer: wait=N`` (capped at :data:`MAX_WAIT`), if asked."""
    header = call.headers.get("Prefer")
    match = _WAIT.search(header) if header else None
    return None if match is None else min(int(match[1]), MAX_WAIT)


async def _command(call: Call, command: Any) -> Reply:
    order_id = parse_order_id(call.params["order_id"])
    if call.restricted:
        await _visible(call, order_id)
    # A PaymentDeclined (402 payment_declined) or ProviderUnavailable (503
    # payment_unavailable, Retry-After) leaves the order as it was, and is answered as such.
    order = await _service(call).ask(_tenant(call), order_id, command)
    return _reply(order)


async def _visible(call: Call, order_id: str) -> Order[Any]:
    """The order, if the caller may see it (a restricted key: only the orders it placed)."""
    order = await _service(call).ask(_tenant(call), order_id, GetOrder())
    if call.restricted and order.placed_by != call.principal:
        raise NotFound(f"no order {order_id}")
    return order


# ---------------------------------------------------------------- handlers


async def place_order(call: Call) -> Reply:
    body: models.OrderCreate = call.body
    items = check_items((item.product_id, item.quantity) for item in body.items)
    service = _service(call)
    key = call.headers.get("Idempotency-Key")  # validated by the pipeline (idempotent=True)
    placed = None
    if key is not None:
        # A retry that took over the claim of a node that died after placing
        # the order (but before storing its answer) finds that order.
        placed = await service.repository.placed_with(service.store, _tenant(call), key)
    if placed is not None:
        order = await service.ask(_tenant(call), placed, GetOrder())
    else:
        command = PlaceOrder(items, _who(call), idempotency_key=key)
        order = await service.ask(_tenant(call), new_order_id(), command)
    headers = {"Location": f"/api/orders/{order.id}"}
    wait = _wait(call)
    if wait is not None:
        order = await service.wait_settled(_tenant(call), order.id, timeout=wait)
        headers["Preference-Applied"] = f"wait={wait}"
    return _reply(order, 201, **headers)


async def list_orders(call: Call) -> dict[str, Any]:
    query: models.OrderQuery = call.query
    before = decode_cursor(query.cursor) if query.cursor is not None else None
    placed_by = call.principal if call.restricted else None
    page = await _service(call).list(
        _tenant(call), status=query.status, placed_by=placed_by, before=before, limit=query.limit
    )
    return {"items": [as_dict(o) for o in page.orders], "next_cursor": encode_cursor(page.after)}


async def get_order(call: Call) -> Reply:
    order = await _visible(call, parse_order_id(call.params["order_id"]))
    if (unchanged := not_modified(call, order.etag)) is not None:
        return unchanged
    return _reply(order)


async def pay_order(call: Call) -> Reply:
    return await _command(call, PayOrder(_who(call), if_match(call)))


async def ship_order(call: Call) -> Reply:
    body: models.OrderShipment = call.body
    tracking = check_tracking_number(body.tracking_number)
    return await _command(call, ShipOrder(tracking, _who(call), if_match(call)))


async def deliver_order(call: Call) -> Reply:
    return await _command(call, DeliverOrder(_who(call), if_match(call)))


async def cancel_order(call: Call) -> Reply:
    body: models.OrderCancellation = call.body
    command = CancelOrder(check_reason(body.reason), _who(call), if_match(call))
    return await _command(call, command)


# ---------------------------------------------------------------- the table


def _o(action: str) -> Permission:
    return Permission("orders", action)


_ORDER_PATH = "/api/orders/<order_id>"
_ORDER_ID = {"order_id": UUID_PATH_SCHEMA}

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/orders",
        place_order,
        "Place an order (pending; Prefer: wait=N answers once its stock is reserved or refused)",
        "orders",
        _o("create"),
        operation_id="placeOrder",
        status=201,
        body=models.OrderCreate,
        response=models.Order,
        idempotent=True,
    ),
    Route(
        "GET",
        "/api/orders",
        list_orders,
        "List orders, newest first (status; keyset pagination with an opaque cursor)",
        "orders",
        _o("read"),
        operation_id="listOrders",
        query=models.OrderQuery,
        response=models.OrderPage,
    ),
    Route(
        "GET",
        _ORDER_PATH,
        get_order,
        "Read an order and its history (ETag; If-None-Match answers 304)",
        "orders",
        _o("read"),
        operation_id="getOrder",
        path_schemas=_ORDER_ID,
        response=models.Order,
        errors=(404,),
    ),
    Route(
        "POST",
        f"{_ORDER_PATH}/pay",
        pay_order,
        "Pay a confirmed order (402 declined, 503 provider unavailable: it stays confirmed)",
        "orders",
        _o("update"),
        operation_id="payOrder",
        path_schemas=_ORDER_ID,
        response=models.Order,
        errors=(402, 404, 409, 412, 503),
        idempotent=True,
    ),
    Route(
        "POST",
        f"{_ORDER_PATH}/ship",
        ship_order,
        "Ship a paid order with its tracking number (its reserved stock leaves on_hand)",
        "orders",
        _o("update"),
        operation_id="shipOrder",
        path_schemas=_ORDER_ID,
        body=models.OrderShipment,
        response=models.Order,
        errors=(404, 409, 412),
    ),
    Route(
        "POST",
        f"{_ORDER_PATH}/deliver",
        deliver_order,
        "Mark a shipped order delivered",
        "orders",
        _o("update"),
        operation_id="deliverOrder",
        path_schemas=_ORDER_ID,
        response=models.Order,
        errors=(404, 409, 412),
    ),
    Route(
        "POST",
        f"{_ORDER_PATH}/cancel",
        cancel_order,
        "Cancel an order (a paid one is refunded first; its stock is released)",
        "orders",
        _o("admin"),
        operation_id="cancelOrder",
        path_schemas=_ORDER_ID,
        body=models.OrderCancellation,
        response=models.Order,
        errors=(404, 409, 412, 503),
    ),
)
