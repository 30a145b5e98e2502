"""The frames the real sockets send are the frames live/protocol.py declares (and so
docs/asyncapi.json): every socket of live/routing.py opened on passline.asgi.application, with
the relay, the bridge and the notifier running, each frame validated against its model and
checked for fields the model does not declare; refusals close with a declared code."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection

from consumers.bridge import bridge_notification
from consumers.notifier import notifier_plan, notifier_push
from live.protocol import SOCKETS, Socket, frame_model, undeclared
from ordering.services import (
    api_token_issue,
    order_cancel,
    order_item_mark_done,
    order_transition,
    order_transition_by_staff,
)
from ordering.status import Actor
from tests.factories import OrderFactory, StaffMembershipFactory, UserFactory
from tests.integration.sockets import refusal, ws

pytestmark = pytest.mark.django_db(transaction=True)

BY_NAME = {socket.name: socket for socket in SOCKETS}
# A frame that may take its time: it crosses the outbox, the relay, RabbitMQ and the bridge.
FRAME_TIMEOUT = 20


class Reader:
    """A client of one socket that validates every frame it reads against the socket's declaration."""

    def __init__(self, socket: Socket, path: str, token: str | None = None) -> None:
        self.socket, self.client = socket, ws(path, token)
        self.frames: list[dict[str, Any]] = []

    async def open(self) -> Reader:
        connected, _ = await self.client.connect()
        assert connected, self.socket.path
        return self

    async def until(self, *kinds: str) -> list[dict[str, Any]]:
        """Read until a frame of each kind has come; every frame read is validated."""
        wanted, read = set(kinds), []
        while wanted:
            frame = await self.client.receive_json_from(timeout=FRAME_TIMEOUT)
            model = frame_model(self.socket, frame)  # KeyError: a frame this socket does not declare
            extra = undeclared(model.model_validate(frame))
            assert not extra, f"{self.socket.path} {frame['type']}: undeclared fields {extra}"
            self.frames.append(frame)
            read.append(frame)
            wanted.discard(frame["type"])
        return read

    async def send(self, frame: dict[str, Any]) -> None:
        assert frame_model_taken(self.socket, frame), f"{self.socket.path} does not declare taking {frame}"
        await self.client.send_json_to(frame)

    async def close(self) -> None:
        await self.client.disconnect()


def frame_model_taken(socket: Socket, frame: dict[str, Any]) -> bool:
    for model in socket.takes:
        try:
            model.model_validate(frame)
        except ValueError:
            continue
        return True
    return False


def in_thread(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run database work off the event loop, closing its connection after."""

    def run():  # type: ignore[no-untyped-def]
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)()


@pytest.fixture
def workers(relay, run_consumers):
    run_consumers(bridge_notification)
    run_consumers(notifier_plan, notifier_push)


def test_every_frame_of_every_socket_validates_against_the_protocol(workers, customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    operator = UserFactory(is_superuser=True, is_staff=True)
    # On the board and in the kitchen before anything opens; another closed in the last minutes.
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    closed = OrderFactory(customer=customer, dish=menu["pasta"])
    order_transition(order_id=closed.pk, to="paid", actor_kind=Actor.SYSTEM)
    order_cancel(order_id=closed.pk, customer=customer)
    owner, staff, boss = (api_token_issue(user=u) for u in (customer, cook, operator))

    async def scenario():
        sockets = {
            "orders": await Reader(BY_NAME["orders"], f"/ws/orders/{order.pk}/", owner).open(),
            "kitchen": await Reader(BY_NAME["kitchen"], f"/ws/kitchen/{restaurant.pk}/", staff).open(),
            "menus": await Reader(BY_NAME["menus"], f"/ws/menus/{restaurant.pk}/").open(),
            "boards": await Reader(BY_NAME["boards"], f"/ws/boards/{restaurant.pk}/").open(),
            "me": await Reader(BY_NAME["me"], "/ws/me/", owner).open(),
            "dashboard": await Reader(BY_NAME["dashboard"], "/ws/dashboard/", boss).open(),
            "dashboard_restaurant": await Reader(
                BY_NAME["dashboard_restaurant"], f"/ws/dashboard/{restaurant.pk}/", staff
            ).open(),
        }
        try:
            # then each socket but /ws/me/ starts with its snapshot
            snapshot = {
                "orders": "order.snapshot",
                "kitchen": "kitchen.snapshot",
                "menus": "menu.snapshot",
                "boards": "board.snapshot",
                "dashboard": "dashboard.figures",
                "dashboard_restaurant": "dashboard.figures",
            }
            for name, kind in snapshot.items():
                assert [f["type"] for f in await sockets[name].until(kind)] == [kind], name
            first = {name: sockets[name].frames[0] for name in snapshot}
            assert first["boards"]["orders"] == [{"order_id": order.pk, "status": "accepted", "fulfilment": "delivery"}]
            assert {t["id"] for t in first["kitchen"]["orders"]} == {order.pk}
            assert {t["id"] for t in first["kitchen"]["recent"]} == {closed.pk}
            assert {i["menu_item_id"] for i in first["menus"]["items"]} == {d.pk for d in menu.values()}

            # when the kitchen crosses a dish off and moves the order on, and a soup is ordered
            await in_thread(order_item_mark_done, order_id=order.pk, menu_item_id=menu["pizza"].pk, user=cook)
            await in_thread(order_transition_by_staff, order_id=order.pk, user=cook, to="preparing")
            await in_thread(order_transition_by_staff, order_id=order.pk, user=cook, to="ready")
            await in_thread(OrderFactory, customer=customer, dish=menu["soup"], quantity=2)

            # then every socket sends its live frames, each one declared
            await sockets["orders"].until("order.update")
            await sockets["kitchen"].until("order.update", "kitchen.ticket")
            await sockets["menus"].until("menu.stock")
            await sockets["boards"].until("board.update")
            await sockets["me"].until("order.update", "notification")

            # and answers what clients send
            for reader in sockets.values():
                await reader.send({"type": "ping"})
                await reader.until("pong")
            # a reconnecting client resumes after the version it has
            again = await Reader(BY_NAME["orders"], f"/ws/orders/{order.pk}/", owner).open()
            sockets["again"] = again
            await again.until("order.snapshot")
            await again.send({"type": "resume", "after_version": 1})
            while [f["version"] for f in again.frames if f["type"] == "order.update"][-1:] != [5]:
                await again.until("order.update")
            assert [f["version"] for f in again.frames if f["type"] == "order.update"] == [2, 3, 4, 5]
            await sockets["orders"].send({"type": "watching", "visible": True})
            await sockets["orders"].client.send_json_to({"type": "shout"})
            await sockets["orders"].until("error")
            await sockets["kitchen"].send({"type": "sync"})
            await sockets["kitchen"].until("kitchen.snapshot")
            await sockets["kitchen"].client.send_json_to({"type": "resume", "after_version": 1})
            await sockets["kitchen"].until("error")
            for name in ("dashboard", "dashboard_restaurant"):
                await sockets[name].send({"type": "sync"})
                await sockets[name].until("dashboard.figures")
        finally:
            for reader in sockets.values():
                await reader.close()

    async_to_sync(scenario)()


def test_every_refusal_closes_with_a_code_its_socket_declares(customer, other_customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    stranger = api_token_issue(user=other_customer)
    missing = 10**9

    async def scenario():
        cases = [
            ("orders", f"/ws/orders/{order.pk}/", None, 4401),
            ("orders", f"/ws/orders/{order.pk}/", stranger, 4403),
            ("orders", f"/ws/orders/{missing}/", stranger, 4403),
            ("kitchen", f"/ws/kitchen/{restaurant.pk}/", None, 4401),
            ("kitchen", f"/ws/kitchen/{restaurant.pk}/", stranger, 4403),
            ("menus", f"/ws/menus/{missing}/", None, 4404),
            ("boards", f"/ws/boards/{missing}/", None, 4404),
            ("me", "/ws/me/", None, 4401),
            ("dashboard", "/ws/dashboard/", None, 4401),
            ("dashboard", "/ws/dashboard/", stranger, 4403),
            ("dashboard_restaurant", f"/ws/dashboard/{restaurant.pk}/", stranger, 4403),
            ("dashboard_restaurant", f"/ws/dashboard/{missing}/", stranger, 4403),
        ]
        for name, path, token, expected in cases:
            code = await refusal(ws(path, token))
            assert code == expected, (path, code)
            assert code in BY_NAME[name].closes, (name, code)
        await asyncio.sleep(0)

    async_to_sync(scenario)()
