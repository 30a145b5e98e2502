"""The live sockets and the relay's nudges when Redis stalls, drops its clients or restarts, on
a private Redis server (tests/private_redis.py): a writer never waits on Redis for a nudge, a
socket survives Redis coming back (and catches up from the database), and an upgrade while
Redis is away is refused with a close code pages retry on, never answered 500."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from bus.outbox import outbox_write
from live.groups import order_group
from ordering.services import api_token_issue, order_transition
from ordering.status import Actor
from tests.busapp.consumers import TEST_HAPPENED
from tests.factories import OrderFactory
from tests.integration.sockets import ws
from tests.private_redis import private_redis  # noqa: F401 - the fixture
from tests.support import running_daphne, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# channels' close code for "try again later": the pages reconnect with back-off.
TRY_AGAIN_LATER = 1013


def write(key: str) -> None:
    with transaction.atomic():
        outbox_write(event=TEST_HAPPENED, payload={"key": key}, aggregate=f"test:{key}")


def test_a_commit_never_waits_for_its_nudge_on_a_stalled_redis(private_redis):
    write("before")  # the nudge sender has connected to Redis
    listener = private_redis.client().pubsub(ignore_subscribe_messages=True)
    private_redis.stall()
    try:
        # when ten transactions with outbox rows commit while Redis answers nothing
        started = time.monotonic()
        for n in range(10):
            write(f"stalled-{n}")
        took = time.monotonic() - started
    finally:
        private_redis.resume()
    # then none of them waited on Redis: ten commits took far less than ten nudge time-outs
    # (0.5 s each) — the writer hands its nudge to a background sender
    print(f"ten commits during the stall: {took:.2f} s")
    assert took < 2.5, f"ten commits took {took:.2f} s during the stall"

    # and once Redis answers again, nudges flow again
    from bus.nudge import channel

    listener.subscribe(channel())

    def nudged() -> bool:
        write("after")
        return listener.get_message(timeout=0.5) is not None

    wait_until(nudged, timeout=15, interval=0.1, what="a nudge after the stall")
    listener.close()


def update_event(order, status: str, version: int) -> dict:
    return {
        "type": "order.update",
        "order_id": order.pk,
        "status": status,
        "version": version,
        "at": "2026-01-01T12:00:00+00:00",
    }


def test_an_open_socket_survives_redis_dropping_its_clients(private_redis, customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=customer)

    async def scenario():
        tracker = ws(f"/ws/orders/{order.pk}/", token)
        assert (await tracker.connect())[0]
        assert (await tracker.receive_json_from(timeout=5))["type"] == "order.snapshot"
        await asyncio.sleep(0.3)  # the socket waits on the layer's blocking pop

        # when Redis drops every client (CLIENT KILL TYPE normal)
        assert await asyncio.get_running_loop().run_in_executor(None, private_redis.kill_clients) >= 1
        await asyncio.sleep(0.5)

        # then the socket is still open and hears the next change
        await get_channel_layer().group_send(order_group(order.pk), update_event(order, "paid", 2))
        frame = await tracker.receive_json_from(timeout=10)
        assert (frame["type"], frame["version"]) == ("order.update", 2)
        # and a new socket connects as before
        again = ws(f"/ws/orders/{order.pk}/", token)
        assert (await again.connect())[0]
        assert (await again.receive_json_from(timeout=5))["type"] == "order.snapshot"
        for socket in (tracker, again):
            await socket.disconnect()

    async_to_sync(scenario)()


def test_after_a_redis_restart_a_socket_rejoins_and_catches_up(private_redis, customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=customer)

    async def scenario():
        tracker = ws(f"/ws/orders/{order.pk}/", token)
        assert (await tracker.connect())[0]
        assert (await tracker.receive_json_from(timeout=5))["order"]["version"] == 1
        loop = asyncio.get_running_loop()

        # when Redis restarts empty (every group membership gone) while the order is paid
        await loop.run_in_executor(None, private_redis.stop)
        await loop.run_in_executor(None, pay, order.pk)
        await loop.run_in_executor(None, private_redis.start)

        # then the socket sends what it missed, from the database
        frame = await tracker.receive_json_from(timeout=20)
        assert (frame["type"], frame["status"], frame["version"]) == ("order.update", "paid", 2)
        # and it is in its group again: the next change reaches it, once
        await get_channel_layer().group_send(order_group(order.pk), update_event(order, "accepted", 3))
        await get_channel_layer().group_send(order_group(order.pk), update_event(order, "accepted", 3))
        frame = await tracker.receive_json_from(timeout=10)
        assert (frame["type"], frame["version"]) == ("order.update", 3)
        assert await tracker.receive_nothing(timeout=0.5)
        await tracker.disconnect()

    async_to_sync(scenario)()


def pay(order_id: int) -> None:
    from django.db import connection

    order_transition(order_id=order_id, to="paid", actor_kind=Actor.SYSTEM)
    connection.close()


def test_an_upgrade_while_redis_is_away_is_refused_with_try_again_later(
    private_redis, client, customer, password, restaurant, menu
):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    token = api_token_issue(user=customer)
    client.force_login(customer)  # the session is cached in Redis
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario():
        await asyncio.get_running_loop().run_in_executor(None, private_redis.stop)
        for socket in (
            ws(f"/ws/orders/{order.pk}/", token),
            ws(f"/ws/orders/{order.pk}/", cookie=cookie),
            ws("/ws/me/", cookie=cookie),
            ws(f"/ws/menus/{restaurant.pk}/"),
        ):
            # accepted, then closed with a code that says "try again later"; no exception, no 500
            assert (await socket.connect(timeout=30))[0]
            assert await socket.receive_output(timeout=30) == {"type": "websocket.close", "code": TRY_AGAIN_LATER}
            await socket.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, private_redis.start)
        for socket in (ws(f"/ws/orders/{order.pk}/", token), ws(f"/ws/orders/{order.pk}/", cookie=cookie)):
            assert (await socket.connect())[0]
            assert (await socket.receive_json_from(timeout=5))["type"] == "order.snapshot"
            await socket.disconnect()

    async_to_sync(scenario)()


@pytest.fixture
def daphne(private_redis, tmp_path):
    """A real daphne on the test database and the private Redis."""
    with running_daphne(tmp_path / "daphne.log", REDIS_URL=private_redis.url(0), CACHE_URL=private_redis.url(1)) as (
        port,
        _,
    ):
        yield port


def test_on_a_real_daphne_sockets_and_upgrades_outlive_redis_dropping_its_clients(
    daphne, private_redis, client, customer, password
):
    token = api_token_issue(user=customer)
    client.force_login(customer)
    origin = f"http://127.0.0.1:{daphne}"
    ways_in = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "cookie": {"Origin": origin, "Cookie": f"sessionid={client.cookies['sessionid'].value}"},
    }

    async def scenario():
        url = f"ws://127.0.0.1:{daphne}/ws/me/"
        opened = [await websockets.connect(url, additional_headers=headers) for headers in ways_in.values()]
        await asyncio.sleep(0.5)
        # when Redis drops every client
        assert private_redis.kill_clients() >= 1
        await asyncio.sleep(0.5)
        # then the open sockets answer a ping (they were not closed with 1011)
        for socket in opened:
            await socket.send('{"type": "ping"}')
            assert await asyncio.wait_for(socket.recv(), 10) == '{"type": "pong"}'
        # and new upgrades, both ways in, are accepted (never a 500)
        for headers in ways_in.values():
            socket = await websockets.connect(url, additional_headers=headers)
            await socket.send('{"type": "ping"}')
            assert await asyncio.wait_for(socket.recv(), 10) == '{"type": "pong"}'
            await socket.close()
        for socket in opened:
            await socket.close()

    asyncio.run(scenario())
