"""The live chain across real processes: outbox → relay → RabbitMQ → two bridge processes →
Redis → two daphne processes → real WebSocket clients (and a third daphne whose inbox holds
only two messages, for the drop tests).

The relay runs in this process; everything after it is a child process on this session's
test database, private vhost and Redis prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from live.groups import order_group
from ordering.services import api_token_issue, order_transition, order_transition_by_staff
from ordering.status import Actor
from passline.asgi import application
from tests.broker import queue_depth
from tests.e2e.conftest import AppProcess, tail
from tests.factories import OrderFactory, StaffMembershipFactory, UserFactory
from tests.support import free_port, process_env, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DAPHNE = Path(sys.executable).parent / "daphne"
# The order's life after it is placed (version 1): versions 2 to 7.
STEPS = ["paid", "accepted", "preparing", "ready", "out_for_delivery", "delivered"]
FINAL = 1 + len(STEPS)
TINY_CAPACITY = 2


# --- the processes ---------------------------------------------------------------------------


@dataclass
class Chain:
    daphnes: dict[str, int]  # name -> port
    processes: dict[str, AppProcess] = field(default_factory=dict)

    def url(self, daphne: str, path: str) -> str:
        return f"ws://127.0.0.1:{self.daphnes[daphne]}{path}"

    def log(self, name: str) -> str:
        return self.processes[name].log_path.read_text(errors="replace")

    def pause(self, name: str) -> None:
        """SIGSTOP: the process stalls (CPU starvation, a long GC) with its sockets open."""
        self.processes[name].proc.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].proc.send_signal(signal.SIGCONT)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@pytest.fixture(scope="module")
def chain(django_db_setup, rabbit_vhost, tmp_path_factory) -> Iterator[Chain]:
    """Daphnes ``a`` and ``b`` (default capacity), ``tiny`` (an inbox of two messages) and two
    bridges, all on this session's database, vhost and Redis prefix."""
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    env = process_env(
        RABBITMQ_URL=rabbit_vhost,
        REDIS_URL=settings.REDIS_URL,
        CHANNELS_PREFIX=layer["prefix"],
        CACHE_URL=settings.CACHES["default"]["LOCATION"],
        CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        DJANGO_SETTINGS_MODULE="passline.settings",
    )
    logs = tmp_path_factory.mktemp("chain")
    ports = {name: free_port() for name in ("a", "b", "tiny")}
    chain = Chain(daphnes=ports)
    for name, port in ports.items():
        extra = {"CHANNELS_CAPACITY": str(TINY_CAPACITY)} if name == "tiny" else {}
        chain.processes[name] = AppProcess(
            f"daphne-{name}",
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
            {**env, **extra},
            logs / f"daphne-{name}.log",
        )
    for name in ("bridge-1", "bridge-2"):
        chain.processes[name] = AppProcess(
            name, [sys.executable, "manage.py", "consume", "bridge.notification"], env, logs / f"{name}.log"
        )
    for process in chain.processes.values():
        process.start()
    try:
        try:
            for name, port in ports.items():
                chain.processes[name].wait_until(lambda port=port: _healthy(port), 60, "a 200 from /healthz")
            chain.processes["bridge-1"].wait_until(
                lambda: queue_depth(rabbit_vhost, "bridge.notification")[1] == 2, 60, "two bridges consuming"
            )
        except RuntimeError as error:
            pytest.fail(
                "\n".join(
                    [str(error), *(f"--- {p.name} ---\n{tail(p.log_path, 30)}" for p in chain.processes.values())]
                )
            )
        yield chain
    finally:
        for process in chain.processes.values():
            if process.running():
                os.kill(process.proc.pid, signal.SIGCONT)
            process.stop()


async def drained(url: str) -> None:
    """Wait until the bridges have taken every notification off their queue."""
    await asyncio.to_thread(
        wait_until,
        lambda: queue_depth(url, "bridge.notification")[0] == 0,
        what="the bridges to take every notification",
    )


# --- data and moves (run in a worker thread: the ORM is synchronous) --------------------------


def advance(order_ids: list[int], cook, steps: list[str] = STEPS) -> None:
    """Every order through ``steps``, one step of each order in turn, so updates interleave."""
    try:
        for to in steps:
            for order_id in order_ids:
                if to == "paid":
                    order_transition(order_id=order_id, to="paid", actor_kind=Actor.SYSTEM)
                else:
                    order_transition_by_staff(order_id=order_id, user=cook, to=to)
    finally:
        connection.close()


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


# --- WebSocket clients -----------------------------------------------------------------------


@dataclass
class Client:
    """A real WebSocket client, and the order versions it has seen."""

    ws: ClientConnection
    version: int = 0
    updates: list[tuple[str, int]] = field(default_factory=list)
    resumes: int = 0

    async def frame(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def send(self, content: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(content))

    async def read_until(self, version: int, *, timeout: float = 30, heartbeat: float | None = None) -> None:
        """Read updates until ``version``. With ``heartbeat``, after that many seconds of silence
        send ``resume`` after the version seen, as the tracking page's heartbeat does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.version < version:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out at version {self.version} waiting for {version}: {self.updates}")
            try:
                frame = await self.frame(min(remaining, heartbeat or remaining))
            except TimeoutError:
                if heartbeat is None:
                    continue
                await self.send({"type": "resume", "after_version": self.version})
                self.resumes += 1
                continue
            if frame["type"] == "order.update":
                self.updates.append((frame["status"], frame["version"]))
                self.version = frame["version"]

    async def nothing(self, timeout: float = 0.5) -> bool:
        try:
            frame = await self.frame(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {frame}")


async def open_socket(url: str, token: str | None, *, rcvbuf: int | None = None) -> ClientConnection:
    """A client from an allowed origin, with a bearer token; ``rcvbuf`` shrinks its TCP receive
    buffer, so a client that stops reading pushes back on the server at once."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sock = None
    if rcvbuf:
        host, port = url.split("/")[2].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect((host, int(port)))
        sock.setblocking(False)
    return await connect(
        url,
        origin="http://127.0.0.1",
        additional_headers=headers,
        proxy=None,
        compression=None,
        ping_interval=None,
        max_queue=4 if rcvbuf else 64,
        sock=sock,
    )


async def order_client(chain: Chain, daphne: str, order_id: int, token: str, **kwargs: Any) -> Client:
    client = Client(await open_socket(chain.url(daphne, f"/ws/orders/{order_id}/"), token, **kwargs))
    snapshot = await client.frame()
    assert (snapshot["type"], snapshot["order"]["id"]) == ("order.snapshot", order_id)
    client.version = snapshot["order"]["version"]
    return client


async def refused(url: str, token: str | None) -> int | None:
    """The close code of a refused socket, which must send nothing before closing."""
    ws = await open_socket(url, token)
    with pytest.raises(ConnectionClosed):
        frame = await asyncio.wait_for(ws.recv(), timeout=10)
        raise AssertionError(f"a refused socket sent {frame!r}")
    return ws.close_code


def expected(after: int = 1) -> list[tuple[str, int]]:
    return [(status, version) for version, status in enumerate(STEPS, start=2) if version > after]


def group_size(group: str) -> int:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return redis.Redis.from_url(settings.REDIS_URL).zcard(f"{prefix}:group:{group}")


async def dropped() -> int:
    return await get_channel_layer().dropped()


# --- the tests -------------------------------------------------------------------------------


def test_every_socket_gets_every_update_once_and_in_order_across_two_daphnes(chain, relay, restaurant, menu):
    # given six orders of three customers, each watched by its customer and by a cook,
    # the two on different daphnes (the bridges compete for the messages, so a later version
    # can overtake an earlier one: the socket fills the gap and drops the late one)
    customers = [UserFactory() for _ in range(3)]
    cook = StaffMembershipFactory(restaurant=restaurant).user
    orders = [(OrderFactory(customer=customers[i % 3], dish=menu["pizza"]).pk, customers[i % 3]) for i in range(6)]
    cook_token = api_token_issue(user=cook)
    tokens = {c.pk: api_token_issue(user=c) for c in customers}

    async def scenario() -> None:
        clients = []
        for i, (order_id, customer) in enumerate(orders):
            owner_on, cook_on = ("a", "b") if i % 2 else ("b", "a")
            clients.append(await order_client(chain, owner_on, order_id, tokens[customer.pk]))
            clients.append(await order_client(chain, cook_on, order_id, cook_token))

        # when every order goes from paid to delivered, the orders' steps interleaved
        await in_thread(advance, [order_id for order_id, _ in orders], cook)

        # then every socket shows versions 2 to 7, each once, in order, and nothing more
        await asyncio.gather(*(c.read_until(FINAL) for c in clients))
        for client in clients:
            assert client.updates == expected()
        assert all(await asyncio.gather(*(c.nothing(0.5) for c in clients)))
        await asyncio.gather(*(c.ws.close() for c in clients))

    asyncio.run(scenario())


def test_only_the_owner_or_the_restaurants_staff_may_listen(chain, relay, customer, other_customer, restaurant, menu):
    order_id = OrderFactory(customer=customer, dish=menu["pizza"]).pk
    cook = StaffMembershipFactory(restaurant=restaurant).user
    elsewhere = StaffMembershipFactory().user  # staff of another restaurant
    token = {user.username: api_token_issue(user=user) for user in (customer, other_customer, cook, elsewhere)}

    async def scenario() -> None:
        owner = await order_client(chain, "a", order_id, token[customer.username])
        order_path, kitchen_path = f"/ws/orders/{order_id}/", f"/ws/kitchen/{restaurant.pk}/"
        # The contract's close codes reach a real client through daphne.
        for daphne in ("a", "b"):
            assert await refused(chain.url(daphne, order_path), token[other_customer.username]) == 4403
            assert await refused(chain.url(daphne, order_path), token[elsewhere.username]) == 4403
            assert await refused(chain.url(daphne, order_path), None) == 4401
            assert await refused(chain.url(daphne, order_path), "not-a-token") == 4401
            assert await refused(chain.url(daphne, kitchen_path), token[elsewhere.username]) == 4403
            assert await refused(chain.url(daphne, kitchen_path), token[customer.username]) == 4403
            assert await refused(chain.url(daphne, kitchen_path), None) == 4401
        # none of them was ever joined to the order's group: it holds the owner alone
        assert await in_thread(group_size, order_group(order_id)) == 1

        # and the owner still hears the change
        await in_thread(advance, [order_id], cook, STEPS[:1])
        await owner.read_until(2)
        assert owner.updates == [("paid", 2)]
        await owner.ws.close()

    asyncio.run(scenario())


def test_resume_sends_exactly_the_missing_updates_in_order(chain, bus, relay, customer, restaurant, menu):
    order_id = OrderFactory(customer=customer, dish=menu["pizza"]).pk
    cook = StaffMembershipFactory(restaurant=restaurant).user
    token = api_token_issue(user=customer)

    async def scenario() -> None:
        first = await order_client(chain, "a", order_id, token)
        second = await order_client(chain, "b", order_id, token)
        # given the bridges stalled while the order moves on four times
        for bridge in ("bridge-1", "bridge-2"):
            chain.pause(bridge)
        try:
            await in_thread(advance, [order_id], cook, STEPS[:4])
            assert await first.nothing(0.3) and await second.nothing(0.01)
            # when the clients resume, one after version 1, the other after version 3
            await first.send({"type": "resume", "after_version": 1})
            await second.send({"type": "resume", "after_version": 3})
            await first.read_until(5)
            await second.read_until(5)
        finally:
            for bridge in ("bridge-1", "bridge-2"):
                chain.resume(bridge)
        # then each got exactly what it was missing, in order
        assert first.updates == expected()[:4]
        assert second.updates == [("preparing", 4), ("ready", 5)]
        # and the stalled group messages, delivered late, are not shown again
        await drained(bus)
        assert await first.nothing(1.0) and await second.nothing(0.01)
        await first.send({"type": "resume", "after_version": 1})
        assert await first.nothing(0.3)
        await first.ws.close()
        await second.ws.close()

    asyncio.run(scenario())


def test_a_socket_that_stopped_reading_catches_up_in_order(chain, bus, relay, customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    orders = [OrderFactory(customer=customer, dish=menu["pizza"]).pk for _ in range(30)]
    token = api_token_issue(user=customer)

    async def scenario() -> None:
        # given a tracking socket and the customer's notification socket (all 30 orders) that
        # stop reading, with TCP receive buffers of a few KB, so the daphne must hold the rest
        slow_order = await order_client(chain, "b", orders[0], token, rcvbuf=2048)
        slow_me = Client(await open_socket(chain.url("b", "/ws/me/"), token, rcvbuf=2048))
        # when all 30 orders go through their six steps (180 updates) meanwhile
        await in_thread(advance, orders, cook)
        await drained(bus)
        # then, reading again, the tracking socket has every version once, in order
        await slow_order.read_until(FINAL)
        assert slow_order.updates == expected()
        # and the notification socket every update of every order, each once
        seen: list[tuple[int, int]] = []
        while len(seen) < len(orders) * len(STEPS):
            frame = await slow_me.frame()
            seen.append((frame["order_id"], frame["version"]))
        assert sorted(seen) == sorted((o, v) for o in orders for v in range(2, FINAL + 1))
        assert await slow_me.nothing(0.5)
        await slow_order.ws.close()
        await slow_me.ws.close()

    asyncio.run(scenario())


def test_dropped_group_messages_are_recovered_from_the_database(chain, bus, relay, customer, restaurant, menu):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    orders = [OrderFactory(customer=customer, dish=menu["pizza"]).pk for _ in range(8)]
    token = api_token_issue(user=customer)

    async def scenario() -> None:
        # given eight tracking sockets on the daphne whose inbox holds two messages
        clients = [await order_client(chain, "tiny", order_id, token) for order_id in orders]
        before = await dropped()
        # when it stalls while all eight orders go through their six steps (48 group messages)
        chain.pause("tiny")
        try:
            await in_thread(advance, orders, cook)
            await drained(bus)
            # then everything beyond its two-message inbox was dropped, and counted (one more
            # may have gone to the blocking pop the stalled process had already sent)
            drops = await wait_for(dropped, lambda n: n - before >= 48 - TINY_CAPACITY - 1, "the drops counted")
        finally:
            chain.resume("tiny")
        # and, once it runs again, every page still ends with every version, in order: the
        # two messages that got through are gap-filled, the rest come with the heartbeat's resume
        await asyncio.gather(*(c.read_until(FINAL, heartbeat=0.5) for c in clients))
        for client in clients:
            assert client.updates == expected()
        assert all(await asyncio.gather(*(c.nothing(0.3) for c in clients)))
        resumed = sum(1 for c in clients if c.resumes)
        print(
            f"\n{drops - before} group messages dropped; {len(clients) - resumed} socket(s) recovered by gap-fill "
            f"alone, {resumed} by resume ({sum(c.resumes for c in clients)} resumes)"
        )
        assert drops - before in (48 - TINY_CAPACITY - 1, 48 - TINY_CAPACITY)
        assert resumed >= len(clients) - TINY_CAPACITY - 1
        await asyncio.gather(*(c.ws.close() for c in clients))

    asyncio.run(scenario())
    assert "live.dropped" in chain.log("bridge-1") + chain.log("bridge-2")


async def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 20) -> Any:
    """Await ``read()`` until ``done(value)``; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.05)


def test_a_long_lived_socket_rejoins_its_groups_on_ping(customer, restaurant, menu, monkeypatch):
    # given a layer whose group memberships lapse after 2 s (a day in production)
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "group_expiry", 2)
    order_id = OrderFactory(customer=customer, dish=menu["pizza"]).pk
    token = api_token_issue(user=customer)

    async def scenario() -> None:
        def socket() -> WebsocketCommunicator:
            return WebsocketCommunicator(
                application,
                f"/ws/orders/{order_id}/",
                headers=[
                    (b"origin", b"http://127.0.0.1"),
                    (b"host", b"127.0.0.1"),
                    (b"authorization", f"Bearer {token}".encode()),
                ],
            )

        pinging, silent = socket(), socket()
        for ws in (pinging, silent):
            assert (await ws.connect())[0]
            await ws.receive_json_from(timeout=5)
        joined = time.time()
        # when one of them keeps its heartbeat going past the expiry and the other says nothing
        # (group_send forgets members whose join is older than the expiry, by whole seconds)
        while time.time() < joined + 3.5:
            await pinging.send_json_to({"type": "ping"})
            assert await pinging.receive_json_from(timeout=5) == {"type": "pong"}
            await asyncio.sleep(0.25)  # the client's heartbeat interval, shortened
        await layer.group_send(
            order_group(order_id),
            {"type": "order.update", "order_id": order_id, "status": "paid", "version": 2, "at": "now"},
        )
        # then the one that pinged is still in the group, and the silent one has lapsed
        assert (await pinging.receive_json_from(timeout=5))["version"] == 2
        assert await silent.receive_nothing(timeout=0.5)
        for ws in (pinging, silent):
            await ws.disconnect()

    asyncio.run(scenario())
