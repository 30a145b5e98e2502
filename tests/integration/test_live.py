"""/ws/orders/{id}/ on the real application, channel layer (Redis), broker and database:
outbox → relay → RabbitMQ → bridge → Redis → the order's socket."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from consumers.bridge import bridge_notification
from ordering.services import api_token_issue, order_transition, order_transition_by_staff
from ordering.status import Actor
from passline.asgi import application
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.integration.sockets import refusal, ws

pytestmark = pytest.mark.django_db(transaction=True)


def socket(order_id: int, token: str | None) -> WebsocketCommunicator:
    return ws(f"/ws/orders/{order_id}/", token)


async def receive_until_version(ws: WebsocketCommunicator, version: int, timeout: float = 10) -> list[dict]:
    frames = []
    while not frames or frames[-1].get("version", frames[-1].get("order", {}).get("version")) < version:
        frames.append(await ws.receive_json_from(timeout=timeout))
    return frames


def test_without_auth_the_socket_is_closed_4401(customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])

    async def scenario():
        assert await refusal(socket(order.pk, None)) == 4401

    async_to_sync(scenario)()


def test_another_customer_is_refused_4403_and_so_is_a_missing_order(customer, other_customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=other_customer)

    async def scenario():
        for order_id in (order.pk, 10**9):
            assert await refusal(socket(order_id, token)) == 4403

    async_to_sync(scenario)()


def test_the_owner_gets_a_snapshot_then_every_change_in_order_through_the_bridge(
    run_bridge, customer, other_customer, restaurant, menu
):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    cook = StaffMembershipFactory(restaurant=restaurant).user
    owner_token, cook_token = api_token_issue(user=customer), api_token_issue(user=cook)
    run_bridge()

    async def scenario():
        owner, kitchen = socket(order.pk, owner_token), socket(order.pk, cook_token)
        assert (await owner.connect())[0] and (await kitchen.connect())[0]
        snapshot = await owner.receive_json_from(timeout=5)
        assert snapshot["type"] == "order.snapshot"
        assert (snapshot["order"]["id"], snapshot["order"]["version"]) == (order.pk, 1)
        await kitchen.receive_json_from(timeout=5)

        # when the order moves on three times (committed, relayed, bridged)
        await asyncio.get_running_loop().run_in_executor(None, move_along, order.pk, cook)

        # then both sockets get versions 2, 3, 4 in order
        for client in (owner, kitchen):
            frames = await receive_until_version(client, 4)
            assert [(f["type"], f["status"], f["version"]) for f in frames] == [
                ("order.update", "paid", 2),
                ("order.update", "accepted", 3),
                ("order.update", "preparing", 4),
            ]

        # and a reconnecting client resumes after the version it saw
        again = socket(order.pk, owner_token)
        await again.connect()
        await again.receive_json_from(timeout=5)  # snapshot at version 4
        await again.send_json_to({"type": "resume", "after_version": 2})
        # every step after 2 as an update, although the snapshot already had 3 and 4
        frames = [await again.receive_json_from(timeout=5) for _ in range(2)]
        assert [(f["type"], f["version"]) for f in frames] == [("order.update", 3), ("order.update", 4)]
        assert await again.receive_nothing(timeout=0.3)
        for client in (owner, kitchen, again):
            await client.disconnect()

    async_to_sync(scenario)()


def move_along(order_id: int, cook) -> None:
    from django.db import connection

    order_transition(order_id=order_id, to="paid", actor_kind=Actor.SYSTEM)
    order_transition_by_staff(order_id=order_id, user=cook, to="accepted")
    order_transition_by_staff(order_id=order_id, user=cook, to="preparing")
    connection.close()


def test_resume_sends_exactly_the_missing_updates_in_order(customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=customer)

    async def scenario():
        ws = socket(order.pk, token)
        await ws.connect()
        await ws.receive_json_from(timeout=5)  # snapshot at version 1
        # changes happen while no bridge runs (as if its group messages were dropped)
        await asyncio.get_running_loop().run_in_executor(None, pay_and_cancel, order.pk, customer)
        await ws.send_json_to({"type": "resume", "after_version": 1})
        frames = [await ws.receive_json_from(timeout=5) for _ in range(2)]
        assert [(f["status"], f["version"]) for f in frames] == [("paid", 2), ("cancelled", 3)]
        await ws.send_json_to({"type": "resume", "after_version": 1})
        assert await ws.receive_nothing(timeout=0.3)  # already sent: never twice
        await ws.send_json_to({"type": "resume", "after_version": "x"})
        assert (await ws.receive_json_from(timeout=5))["error"]["code"] == "invalid_message"
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
        await ws.disconnect()

    async_to_sync(scenario)()


def pay_and_cancel(order_id: int, customer) -> None:
    from django.db import connection

    from ordering.services import order_cancel

    order_transition(order_id=order_id, to="paid", actor_kind=Actor.SYSTEM)
    order_cancel(order_id=order_id, customer=customer)
    connection.close()


def kitchen_socket(restaurant_id: int, token: str | None) -> WebsocketCommunicator:
    return ws(f"/ws/kitchen/{restaurant_id}/", token)


def test_the_kitchen_socket_is_for_that_restaurants_staff_only(customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    stranger = StaffMembershipFactory().user
    tokens = {"customer": api_token_issue(user=customer), "stranger": api_token_issue(user=stranger)}

    async def scenario():
        assert await refusal(kitchen_socket(restaurant.pk, None)) == 4401
        for who in ("customer", "stranger"):
            assert await refusal(kitchen_socket(restaurant.pk, tokens[who])) == 4403

    async_to_sync(scenario)()
    assert cook  # the restaurant has staff; only they may connect (next test)


def test_the_kitchen_gets_open_tickets_then_new_paid_orders_and_changes(run_bridge, customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    open_ticket = OrderFactory(customer=customer, dish=menu["pizza"])
    order_transition(order_id=open_ticket.pk, to="paid", actor_kind=Actor.SYSTEM)
    OrderFactory(customer=customer, dish=menu["pizza"])  # still pending payment: not a ticket yet
    token = api_token_issue(user=cook)
    run_bridge()

    async def scenario():
        ws = kitchen_socket(restaurant.pk, token)
        assert (await ws.connect())[0]
        snapshot = await ws.receive_json_from(timeout=5)
        assert snapshot["type"] == "kitchen.snapshot"
        assert [(o["id"], o["status"]) for o in snapshot["orders"]] == [(open_ticket.pk, "paid")]

        new = await asyncio.get_running_loop().run_in_executor(None, place_and_pay, customer, restaurant, menu)
        await asyncio.get_running_loop().run_in_executor(None, accept, open_ticket.pk, cook)
        frames = [await ws.receive_json_from(timeout=10) for _ in range(4)]
        updates = [f for f in frames if f["type"] == "order.update"]
        assert sorted((f["order_id"], f["status"], f["version"]) for f in updates) == sorted(
            [(new, "paid", 2), (open_ticket.pk, "accepted", 3)]
        )
        # each update is followed by the whole ticket as it is now
        tickets = {f["ticket"]["id"]: f["ticket"] for f in frames if f["type"] == "kitchen.ticket"}
        assert {i: (t["status"], t["next"]) for i, t in tickets.items()} == {
            new: ("paid", ["accepted", "rejected"]),
            open_ticket.pk: ("accepted", ["preparing"]),
        }
        assert tickets[new]["items"][0]["name"] == "Pizza" and tickets[new]["paid_at"]
        await ws.disconnect()

    async_to_sync(scenario)()


def place_and_pay(customer, restaurant, menu) -> int:
    from django.db import connection

    order = OrderFactory(customer=customer, dish=menu["pizza"])
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    connection.close()
    return order.pk


def accept(order_id: int, cook) -> None:
    from django.db import connection

    order_transition_by_staff(order_id=order_id, user=cook, to="accepted")
    connection.close()


def test_menu_pages_hear_when_a_dish_sells_out(customer, restaurant, menu, run_bridge):
    run_bridge()

    async def scenario():
        # anyone may watch a menu, as anyone may read it
        menu_ws = ws(f"/ws/menus/{restaurant.pk}/")
        assert (await menu_ws.connect())[0]
        assert (await menu_ws.receive_json_from(timeout=5))["type"] == "menu.snapshot"
        # when a customer orders the last 5 bowls of soup (daily stock 5)
        await asyncio.get_running_loop().run_in_executor(None, order_soup, customer, restaurant, menu, 5)
        frame = await menu_ws.receive_json_from(timeout=10)
        assert frame == {"type": "menu.stock", "menu_item_id": menu["soup"].pk, "remaining": 0}
        await menu_ws.disconnect()

    async_to_sync(scenario)()


def order_soup(customer, restaurant, menu, quantity: int) -> None:
    from django.db import connection

    OrderFactory(customer=customer, dish=menu["soup"], quantity=quantity)
    connection.close()


def test_the_pickup_board_shows_numbers_only_and_hears_changes(run_bridge, client, customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    cooking, waiting, pending = (OrderFactory(customer=customer, dish=menu["pizza"]) for _ in range(3))
    for order in (cooking, waiting):
        order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
        order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    for status in ("preparing", "ready"):
        order_transition_by_staff(order_id=waiting.pk, user=cook, to=status)

    # the board page: order numbers in their columns, nothing personal
    page = client.get(f"/r/{restaurant.slug}/board/").content.decode()
    preparing, ready = page.split('data-column="preparing"')[1].split('data-column="ready"')
    assert f">#{cooking.pk} " in preparing and f">#{waiting.pk} " in ready
    assert f"#{pending.pk} " not in page and f"#{pending.pk}<" not in page
    # delivered orders are marked for the courier
    assert 'data-fulfilment="delivery"' in page and "Courier" in page
    assert customer.username not in page and "1 Test Lane" not in page

    run_bridge()

    async def scenario():
        board = ws(f"/ws/boards/{restaurant.pk}/")
        assert (await board.connect())[0]
        assert (await board.receive_json_from(timeout=5))["type"] == "board.snapshot"
        # the events already written (accepted, preparing, ready) reach the board too
        frames = [await board.receive_json_from(timeout=10) for _ in range(4)]
        assert all(set(f) == {"type", "order_id", "status"} for f in frames)
        await asyncio.get_running_loop().run_in_executor(None, hand_over, waiting.pk, cook)
        while (frame := await board.receive_json_from(timeout=10))["status"] != "delivered":
            pass
        assert frame == {"type": "board.update", "order_id": waiting.pk, "status": "delivered"}
        await board.disconnect()

    async_to_sync(scenario)()


def hand_over(order_id: int, cook) -> None:
    from django.db import connection

    order_transition_by_staff(order_id=order_id, user=cook, to="delivered")
    connection.close()


def test_the_customer_socket_carries_their_own_orders_with_a_label(
    run_bridge, customer, other_customer, restaurant, menu
):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    mine, theirs = api_token_issue(user=customer), api_token_issue(user=other_customer)
    run_bridge()

    async def scenario():
        def me(token):
            return ws("/ws/me/", token)

        assert await refusal(me(None)) == 4401
        owner, stranger = me(mine), me(theirs)
        try:
            assert (await owner.connect())[0] and (await stranger.connect())[0]
            await asyncio.get_running_loop().run_in_executor(None, pay, order.pk)
            frame = await owner.receive_json_from(timeout=10)
            assert (frame["order_id"], frame["status"], frame["label"]) == (
                order.pk,
                "paid",
                "Paid, waiting for the kitchen",
            )
            assert await stranger.receive_nothing(timeout=0.5)
        finally:
            await owner.disconnect()
            await stranger.disconnect()

    async_to_sync(scenario)()


def pay(order_id: int) -> None:
    from django.db import connection

    order_transition(order_id=order_id, to="paid", actor_kind=Actor.SYSTEM)
    connection.close()


def test_logging_out_closes_the_sessions_sockets(client, customer, password, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    client.force_login(customer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario():
        page = ws(f"/ws/orders/{order.pk}/", cookie=cookie)
        assert (await page.connect())[0]
        assert (await page.receive_json_from(timeout=5))["type"] == "order.snapshot"
        await asyncio.get_running_loop().run_in_executor(None, lambda: client.post("/logout/"))
        assert await page.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        # As a server does after the application closed: the consumer ends in this event loop
        # (one left behind keeps the shared channel layer receiving on a loop that is gone).
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_backlog_reaches_the_sockets_as_one_batch_in_order_with_one_ticket_per_order(
    bus, run_relay, run_consumers, customer, restaurant, menu
):
    from bus.models import OutboxMessage
    from tests.broker import queue_depth
    from tests.support import wait_until

    cook = StaffMembershipFactory(restaurant=restaurant).user
    orders = [OrderFactory(customer=customer, dish=menu["pizza"]) for _ in range(3)]
    owner, kitchen_token = api_token_issue(user=customer), api_token_issue(user=cook)

    async def scenario():
        trackers = [socket(order.pk, owner) for order in orders]
        kitchen = kitchen_socket(restaurant.pk, kitchen_token)
        for client in (*trackers, kitchen):
            assert (await client.connect())[0]
            await client.receive_json_from(timeout=5)  # the snapshot

        # given a backlog: nine changes relayed while no bridge runs
        def backlog() -> None:
            from django.db import connection

            for order in orders:
                move_along(order.pk, cook)
            relay = run_relay()
            wait_until(lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), what="relayed")
            relay.stop()
            assert queue_depth(bus, "bridge.notification")[0] == 9
            connection.close()

        await asyncio.get_running_loop().run_in_executor(None, backlog)
        # when the bridge starts, it takes the waiting messages as a batch
        bridge = run_consumers(bridge_notification)
        try:
            # then every tracker gets its own order's versions 2, 3, 4 in order
            for order, ws in zip(orders, trackers):
                frames = await receive_until_version(ws, 4)
                assert [(f["order_id"], f["version"]) for f in frames] == [(order.pk, 2), (order.pk, 3), (order.pk, 4)]
            # and the kitchen every update, plus one ticket per order, the newest
            frames = [await kitchen.receive_json_from(timeout=10) for _ in range(12)]
            updates = [(f["order_id"], f["version"]) for f in frames if f["type"] == "order.update"]
            assert updates == [(order.pk, v) for order in orders for v in (2, 3, 4)]
            tickets = [(f["ticket"]["id"], f["ticket"]["status"]) for f in frames if f["type"] == "kitchen.ticket"]
            assert sorted(tickets) == sorted((order.pk, "preparing") for order in orders)
            assert await kitchen.receive_nothing(timeout=0.3)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, bridge.stop)
        for ws in (*trackers, kitchen):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_a_socket_from_another_site_is_refused_even_with_a_valid_token(customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=customer)

    async def scenario():
        for origin in (b"http://evil.example", b"null"):
            ws = WebsocketCommunicator(
                application,
                f"/ws/orders/{order.pk}/",
                headers=[(b"origin", origin), (b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
            )
            connected, _ = await ws.connect()
            assert not connected, origin
        # the same request from the site itself is let in
        allowed = socket(order.pk, token)
        assert (await allowed.connect())[0]
        # (closed before the test's event loop ends: a socket left open would leave the shared
        # channel layer receiving on a loop that is gone)
        await allowed.disconnect()

    async_to_sync(scenario)()
