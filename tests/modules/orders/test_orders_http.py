"""The orders API and its saga end to end on a real server (SQLite file and PostgreSQL).

Placing an order writes it pending with ``order.placed``; commerce reserves
and prices the stock; the order is confirmed (or cancelled
``insufficient_stock``); paying, shipping and delivering move it on, each
accepted command with exactly one event; cancelling releases the stock,
shipping commits it. Illegal commands are 409 ``invalid_transition`` and
change nothing.
"""

from __future__ import annotations

import uuid

import pytest
import trio

from tests.http.conftest import Server

from .support import ORDERS, drained, events_of, levels, place, stocked_product


async def test_an_order_is_placed_confirmed_paid_shipped_and_delivered(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10, price=1290)
        tee = await stocked_product(server, admin, 5, price=2490)
        placed = await place(server, admin, [(mug, 2), (tee, 1), (mug, 1)])
        assert placed.status_code == 201, placed.text
        assert placed.headers["Preference-Applied"] == "wait=10"
        order = placed.json()
        url = f"{ORDERS}/{order['id']}"
        assert placed.headers["Location"] == url
        assert order["status"] == "confirmed"
        # One line per product, priced by commerce when it reserved the stock.
        by_product = {line["product_id"]: line for line in order["lines"]}
        assert by_product[mug] == {
            "product_id": mug,
            "quantity": 3,
            "unit_price": 1290,
            "currency": "EUR",
            "subtotal": 3870,
        }
        assert (order["total"], order["currency"]) == (3870 + 2490, "EUR")
        assert order["placed_by"].startswith("key:")
        assert await levels(server, admin, mug) == (10, 3, 7)

        paid = await server.client.post(f"{url}/pay", headers=auth)
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "paid"
        assert paid.json()["payment"] == {
            "charge_id": f"manual-{order['id']}",
            "provider": "manual",
            "amount": 6360,
            "currency": "EUR",
        }
        assert paid.headers["ETag"] == '"3"'
        shipped = await server.client.post(
            f"{url}/ship", json={"tracking_number": "1Z 999/AA-1"}, headers=auth
        )
        assert shipped.status_code == 200, shipped.text
        assert shipped.json()["tracking_number"] == "1Z 999/AA-1"
        await drained(server)
        # Shipping turned the reservation into a decrement of on_hand.
        assert await levels(server, admin, mug) == (7, 0, 7)
        assert await levels(server, admin, tee) == (4, 0, 4)
        delivered = await server.client.post(f"{url}/deliver", headers=auth)
        assert delivered.status_code == 200, delivered.text
        final = delivered.json()
        assert [c["status"] for c in final["history"]] == [
            "pending",
            "confirmed",
            "paid",
            "shipped",
            "delivered",
        ]
        assert final["history"][1]["reason"] == "stock_reserved"
        assert final["version"] == 5
        await drained(server)
        assert await events_of(server, order["id"]) == [
            "order.placed",
            "inventory.reserved",
            "order.confirmed",
            "order.paid",
            "order.shipped",
            "inventory.committed",
            "order.delivered",
        ]
        read = await server.client.get(url, headers=auth)
        assert read.json() == final
        unchanged = await server.client.get(url, headers={**auth, "If-None-Match": '"5"'})
        assert unchanged.status_code == 304


async def test_an_order_beyond_the_stock_is_cancelled_and_reserves_nothing(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 3)
        plenty = await stocked_product(server, admin, 50)
        placed = await place(server, admin, [(plenty, 5), (mug, 4)])
        order = placed.json()
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "insufficient_stock")
        assert order["lines"] is None
        assert order["total"] is None
        await drained(server)
        # All or nothing: the item that fitted is not held either.
        assert await levels(server, admin, plenty) == (50, 0, 50)
        assert await levels(server, admin, mug) == (3, 0, 3)
        assert (await events_of(server, order["id"]))[:3] == [
            "order.placed",
            "inventory.rejected",
            "order.cancelled",
        ]
        pay = await server.client.post(f"{ORDERS}/{order['id']}/pay", headers=server.auth(admin))
        assert pay.status_code == 409
        assert pay.json()["code"] == "invalid_transition"
        assert pay.json()["allowed"] == []


async def test_an_unknown_or_inactive_product_cancels_the_order(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        placed = await place(server, admin, [(str(uuid.uuid4()), 1)])
        order = placed.json()
        assert (order["status"], order["cancel_reason"]) == ("cancelled", "product_unavailable")


async def test_cancelling_releases_the_stock_and_a_paid_order_is_refunded(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        confirmed = (await place(server, admin, [(mug, 4)])).json()
        paid = (await place(server, admin, [(mug, 3)])).json()
        assert await levels(server, admin, mug) == (10, 7, 3)
        assert (await server.client.post(f"{ORDERS}/{paid['id']}/pay", headers=auth)).is_success

        first = await server.client.post(
            f"{ORDERS}/{confirmed['id']}/cancel", json={}, headers=auth
        )
        assert first.status_code == 200, first.text
        assert (first.json()["status"], first.json()["cancel_reason"]) == (
            "cancelled",
            "requested",
        )
        assert first.json()["refund_id"] is None
        second = await server.client.post(
            f"{ORDERS}/{paid['id']}/cancel", json={"reason": "changed my mind"}, headers=auth
        )
        assert second.status_code == 200, second.text
        refunded = second.json()
        assert refunded["refund_id"] == f"manual-refund-{paid['id']}"
        assert refunded["payment"]["charge_id"] == f"manual-{paid['id']}"
        assert [c["status"] for c in refunded["history"]] == [
            "pending",
            "confirmed",
            "paid",
            "cancelled",
        ]
        await drained(server)
        assert await levels(server, admin, mug) == (10, 0, 10)
        assert (await events_of(server, paid["id"]))[-2:] == [
            "order.cancelled",
            "inventory.released",
        ]
        again = await server.client.post(f"{ORDERS}/{paid['id']}/cancel", json={}, headers=auth)
        assert again.status_code == 409
        assert again.json()["code"] == "invalid_transition"


async def test_illegal_and_stale_commands_change_nothing(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        order = (await place(server, admin, [(mug, 1)])).json()
        url = f"{ORDERS}/{order['id']}"
        ship = await server.client.post(f"{url}/ship", json={"tracking_number": "T"}, headers=auth)
        assert ship.status_code == 409
        assert ship.headers["content-type"] == "application/problem+json"
        assert ship.json()["code"] == "invalid_transition"
        assert (ship.json()["current"], ship.json()["allowed"]) == ("confirmed", ["pay", "cancel"])
        deliver = await server.client.post(f"{url}/deliver", headers=auth)
        assert deliver.status_code == 409
        stale = await server.client.post(f"{url}/pay", headers={**auth, "If-Match": '"1"'})
        assert stale.status_code == 412
        assert stale.json()["code"] == "version_mismatch"
        bad = await server.client.post(f"{url}/ship", json={"tracking_number": ""}, headers=auth)
        assert bad.status_code == 422
        after = (await server.client.get(url, headers=auth)).json()
        assert (after["status"], after["version"]) == ("confirmed", 2)
        await drained(server)
        assert await events_of(server, order["id"]) == [
            "order.placed",
            "inventory.reserved",
            "order.confirmed",
        ]
        missing = await server.client.get(f"{ORDERS}/{uuid.uuid4()}", headers=auth)
        assert missing.status_code == 404
        not_an_id = await server.client.get(f"{ORDERS}/nope", headers=auth)
        assert not_an_id.status_code == 400


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"product_id": "not-a-uuid", "quantity": 1}],
        [{"product_id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", "quantity": 0}],
        [{"product_id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", "quantity": 10_001}],
        [{"product_id": "6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", "quantity": 6000}] * 2,
        [{"product_id": str(uuid.UUID(int=i)), "quantity": 1} for i in range(101)],
    ],
)
async def test_bad_orders_are_problems_and_write_nothing(
    server: Server, items: list[object]
) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(30):
        response = await server.client.post(
            ORDERS, json={"items": items}, headers=server.auth(admin)
        )
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        count = await server.app.context.store.store.fetchval("SELECT count(*) FROM orders_orders")
        assert count == 0


async def test_placing_without_waiting_answers_pending_and_the_saga_finishes(
    server: Server,
) -> None:
    admin = await server.key("alpha", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 10)
        placed = await place(server, admin, [(mug, 2)], wait=False)
        assert placed.status_code == 201
        assert placed.json()["status"] == "pending"
        assert "Preference-Applied" not in placed.headers
        assert (placed.json()["version"], placed.headers["ETag"]) == (1, '"1"')
        await drained(server)
        order = await server.client.get(placed.headers["Location"], headers=server.auth(admin))
        assert order.json()["status"] == "confirmed"


async def test_lists_filter_by_status_and_page_newest_first(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    auth = server.auth(admin)
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 5)
        ids = [(await place(server, admin, [(mug, 1)])).json()["id"] for _ in range(5)]
        big = (await place(server, admin, [(mug, 100)])).json()
        assert big["status"] == "cancelled"
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2, "status": "confirmed"}
            if cursor is not None:
                params["cursor"] = cursor
            page = (await server.client.get(ORDERS, params=params, headers=auth)).json()
            seen += [o["id"] for o in page["items"]]
            assert all(o["status"] == "confirmed" for o in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        cancelled = await server.client.get(ORDERS, params={"status": "cancelled"}, headers=auth)
        assert [o["id"] for o in cancelled.json()["items"]] == [big["id"]]
        every = (await server.client.get(ORDERS, headers=auth)).json()["items"]
        assert [o["id"] for o in every] == [big["id"], *reversed(ids)]


async def test_viewers_read_editors_move_only_admins_cancel(server: Server) -> None:
    admin = await server.key("alpha", "admin")
    editor = await server.key("alpha", "editor")
    viewer = await server.key("alpha", "viewer")
    with trio.fail_after(60):
        mug = await stocked_product(server, admin, 5)
        order = (await place(server, editor, [(mug, 1)])).json()
        url = f"{ORDERS}/{order['id']}"
        assert (await server.client.get(url, headers=server.auth(viewer))).status_code == 200
        refused = await server.client.post(f"{url}/pay", headers=server.auth(viewer))
        assert refused.status_code == 403
        assert (await server.client.post(f"{url}/pay", headers=server.auth(editor))).is_success
        cancel = await server.client.post(f"{url}/cancel", json={}, headers=server.auth(editor))
        assert cancel.status_code == 403
        cancel = await server.client.post(f"{url}/cancel", json={}, headers=server.auth(admin))
        assert cancel.status_code == 200


async def test_tenant_a_never_sees_or_moves_tenant_bs_orders(server: Server) -> None:
    alpha = await server.key("alpha", "admin")
    beta = await server.key("beta", "admin")
    with trio.fail_after(60):
        mug = await stocked_product(server, alpha, 5)
        order = (await place(server, alpha, [(mug, 1)])).json()
        url = f"{ORDERS}/{order['id']}"
        as_beta = server.auth(beta)
        attempts = [
            await server.client.get(url, headers=as_beta),
            await server.client.post(f"{url}/pay", headers=as_beta),
            await server.client.post(f"{url}/ship", json={"tracking_number": "T"}, headers=as_beta),
            await server.client.post(f"{url}/deliver", headers=as_beta),
            await server.client.post(f"{url}/cancel", json={}, headers=as_beta),
        ]
        for response in attempts:
            assert response.status_code == 404, response.text
        assert (await server.client.get(ORDERS, headers=as_beta)).json()["items"] == []
        # Beta cannot order alpha's product either: to beta's tenant it does not exist.
        theirs = (await place(server, beta, [(mug, 1)])).json()
        assert (theirs["status"], theirs["cancel_reason"]) == ("cancelled", "product_unavailable")
        crossed = await server.client.get(url, headers=server.auth(beta, "alpha"))
        assert crossed.status_code == 403
        mine = (await server.client.get(url, headers=server.auth(alpha))).json()
        assert (mine["status"], mine["version"]) == ("confirmed", 2)
        assert await levels(server, alpha, mug) == (5, 1, 4)
