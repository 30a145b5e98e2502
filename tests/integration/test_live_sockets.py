"""The live sockets' contract on the real application: a resume on a fresh socket replays every
step after N; the menu and pick-up board sockets start with a snapshot (and refuse a restaurant
that does not exist with 4404); a non-browser client with a bearer token needs no Origin."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from live.groups import order_group
from ordering.services import api_token_issue, order_transition, order_transition_by_staff
from ordering.status import Actor
from passline.asgi import application
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.integration.sockets import refusal, ws

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_resume_on_a_fresh_socket_replays_every_step_after_n_then_live_ones_once(customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    order_transition_by_staff(order_id=order.pk, user=cook, to="preparing")
    token = api_token_issue(user=customer)

    async def scenario():
        socket = ws(f"/ws/orders/{order.pk}/", token)
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=5))["order"]["version"] == 4
        # when the client says it has seen version 1 (the snapshot already shows 4)
        await socket.send_json_to({"type": "resume", "after_version": 1})
        # then it gets 2, 3 and 4 as updates, in order
        frames = [await socket.receive_json_from(timeout=5) for _ in range(3)]
        assert [(f["type"], f["status"], f["version"]) for f in frames] == [
            ("order.update", "paid", 2),
            ("order.update", "accepted", 3),
            ("order.update", "preparing", 4),
        ]
        # and never twice
        await socket.send_json_to({"type": "resume", "after_version": 1})
        assert await socket.receive_nothing(timeout=0.3)
        # and then a live change arrives once, however often the group delivers it
        await asyncio.get_running_loop().run_in_executor(None, ready, order.pk, cook)
        event = {
            "type": "order.update",
            "order_id": order.pk,
            "status": "ready",
            "version": 5,
            "at": "2026-01-01T12:00:00+00:00",
        }
        for _ in range(2):
            await get_channel_layer().group_send(order_group(order.pk), event)
        frame = await socket.receive_json_from(timeout=5)
        assert (frame["type"], frame["status"], frame["version"]) == ("order.update", "ready", 5)
        assert await socket.receive_nothing(timeout=0.3)
        await socket.send_json_to({"type": "resume", "after_version": 4})
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()

    async_to_sync(scenario)()


def ready(order_id: int, cook) -> None:
    from django.db import connection

    order_transition_by_staff(order_id=order_id, user=cook, to="ready")
    connection.close()


def test_the_menu_socket_starts_with_a_snapshot_of_every_dish(customer, restaurant, menu):
    OrderFactory(customer=customer, dish=menu["soup"], quantity=5)  # sold out before the socket opens

    async def scenario():
        socket = ws(f"/ws/menus/{restaurant.pk}/")
        assert (await socket.connect())[0]
        snapshot = await socket.receive_json_from(timeout=5)
        assert snapshot == {
            "type": "menu.snapshot",
            "restaurant_id": restaurant.pk,
            "items": sorted(
                [
                    {"menu_item_id": menu["pizza"].pk, "remaining": None, "available": True},
                    {"menu_item_id": menu["pasta"].pk, "remaining": None, "available": True},
                    {"menu_item_id": menu["soup"].pk, "remaining": 0, "available": False},
                ],
                key=lambda item: item["menu_item_id"],
            ),
        }
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_board_socket_starts_with_a_snapshot_of_the_orders_it_shows(customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    accepted, cooking, waiting, pending = (OrderFactory(customer=customer, dish=menu["pizza"]) for _ in range(4))
    for order in (accepted, cooking, waiting):
        order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
        order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    for order, steps in ((cooking, ("preparing",)), (waiting, ("preparing", "ready"))):
        for status in steps:
            order_transition_by_staff(order_id=order.pk, user=cook, to=status)

    async def scenario():
        socket = ws(f"/ws/boards/{restaurant.pk}/")
        assert (await socket.connect())[0]
        assert await socket.receive_json_from(timeout=5) == {
            "type": "board.snapshot",
            "restaurant_id": restaurant.pk,
            "orders": [
                {"order_id": accepted.pk, "status": "accepted", "fulfilment": "delivery"},
                {"order_id": cooking.pk, "status": "preparing", "fulfilment": "delivery"},
                {"order_id": waiting.pk, "status": "ready", "fulfilment": "delivery"},
            ],
        }
        await socket.disconnect()

    async_to_sync(scenario)()
    assert pending  # still pending payment: not on the board


def test_menu_and_board_sockets_of_a_restaurant_that_does_not_exist_are_refused_4404(restaurant):
    async def scenario():
        for path in ("/ws/menus/{}/", "/ws/boards/{}/"):
            assert await refusal(ws(path.format(10**9))) == 4404

    async_to_sync(scenario)()


def upgrade(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])


def test_a_bearer_client_without_cookies_needs_no_origin(customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    bearer = (b"authorization", f"Bearer {api_token_issue(user=customer)}".encode())

    async def scenario():
        # a non-browser client: a bearer token, no cookie, no Origin
        socket = upgrade(f"/ws/orders/{order.pk}/", bearer)
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=5))["type"] == "order.snapshot"
        await socket.disconnect()

    async_to_sync(scenario)()


def test_the_origin_check_stays_for_cookies_and_for_any_origin_sent(client, customer, password, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    bearer = (b"authorization", f"Bearer {api_token_issue(user=customer)}".encode())
    client.force_login(customer)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    path = f"/ws/orders/{order.pk}/"

    async def scenario():
        for headers in (
            (cookie,),  # a session cookie without Origin
            (cookie, (b"origin", b"http://evil.example")),  # cross-site WebSocket hijacking
            (bearer, cookie),  # a token does not excuse the cookie
            (bearer, (b"origin", b"http://evil.example")),  # an Origin sent must be allowed
            (bearer, (b"origin", b"null")),
            (),  # nobody at all, on a public socket
            ((b"authorization", b"Basic dXNlcjpwdw=="),),  # not a bearer token
        ):
            target = f"/ws/menus/{restaurant.pk}/" if not headers else path
            socket = upgrade(target, *headers)
            connected, _ = await socket.connect()
            assert not connected, headers
        # the site's own pages, with the cookie and their Origin, are let in
        socket = upgrade(path, cookie, (b"origin", b"http://127.0.0.1"))
        assert (await socket.connect())[0]
        await socket.disconnect()

    async_to_sync(scenario)()
