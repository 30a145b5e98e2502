"""The live sockets as an attacker meets them, on the real application, channel layer (Redis) and
database: a socket outlives neither its session, its token nor its user's rights; frames have a
size and a rate limit; an address has a cap on open sockets, shared by every web process through
Redis; an anonymous socket may only watch a restaurant that exists."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth import update_session_auth_hash
from django.test import Client

from live.limits import frame_size, release_slot, slots_taken, take_slot
from ordering.models import ApiToken, Order, StaffMembership
from ordering.services import api_token_issue
from passline.sessions import SessionStore
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.integration.sockets import refusal, ws
from tests.support import free_port, process_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checks(settings):
    """Re-checks on every client frame; the timer set by each test."""
    settings.LIVE_AUTH_RECHECK_SECONDS = 0
    settings.LIVE_AUTH_CHECK_SECONDS = 60
    return settings


async def in_thread(work: Callable[[], Any]) -> Any:
    """Database work off the event loop, on a connection closed afterwards."""

    def run() -> Any:
        from django.db import connection

        try:
            return work()
        finally:
            connection.close()

    return await asyncio.get_running_loop().run_in_executor(None, run)


async def closed_with(socket: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the server closed an open socket with (frames before the close are skipped)."""
    while True:
        output = await socket.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            await socket.disconnect()
            return output["code"]


async def opened(socket: WebsocketCommunicator) -> dict[str, Any]:
    """Connect, and return the first frame (the snapshot)."""
    assert (await socket.connect())[0]
    return await socket.receive_json_from(timeout=5)


async def pong(socket: WebsocketCommunicator) -> None:
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}


def session_cookie(user, password: str) -> tuple[bytes, str]:
    browser = Client()
    # a session as logging in makes one (django-axes asks the log-in form for its request)
    browser.force_login(user)
    key = browser.cookies["sessionid"].value
    return f"sessionid={key}".encode(), key


def an_order(customer: Any, dish: Any) -> Order:
    return cast(Order, OrderFactory(customer=customer, dish=dish))


def a_cook(restaurant: Any) -> Any:
    return cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user


def from_address(socket: WebsocketCommunicator, host: str) -> WebsocketCommunicator:
    # As daphne sets it (with --proxy-headers: from the proxy's X-Forwarded-For).
    socket.scope["client"] = (host, 50000)
    return socket


# --- revocation ----------------------------------------------------------------------------


def test_logging_out_closes_the_sessions_socket_and_a_flushed_session_closes_at_the_next_frame(
    checks, client, customer, password, restaurant, menu
):
    order = an_order(customer, menu["pizza"])
    client.force_login(customer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    flushed_cookie, flushed_key = session_cookie(customer, password)

    async def scenario():
        page = ws(f"/ws/orders/{order.pk}/", cookie=cookie)
        assert (await opened(page))["type"] == "order.snapshot"
        await in_thread(lambda: client.post("/logout/"))
        assert await closed_with(page) == 4401

        # a session ended on the server (flushed, expired, cleared): no group message tells the
        # socket, its next frame finds out
        other = ws("/ws/me/", cookie=flushed_cookie)
        assert (await other.connect())[0]
        await pong(other)
        await in_thread(lambda: SessionStore(session_key=flushed_key).delete())
        await other.send_json_to({"type": "ping"})
        assert await closed_with(other) == 4401

    async_to_sync(scenario)()


def test_a_password_change_closes_the_other_sessions_sockets_on_the_timer(checks, customer, password, restaurant, menu):
    checks.LIVE_AUTH_CHECK_SECONDS = 0.3
    checks.LIVE_AUTH_RECHECK_SECONDS = 600  # the timer does it, not a frame
    order = an_order(customer, menu["pizza"])
    changer_cookie, changer_key = session_cookie(customer, password)
    other_cookie, _ = session_cookie(customer, password)

    def change_password() -> str:
        # As Django's password change view does: the new password, then the changing session
        # is kept signed in under a new key (update_session_auth_hash cycles it).
        customer.set_password("a-brand-new-passphrase")
        customer.save()
        request = SimpleNamespace(session=SessionStore(session_key=changer_key), user=customer)
        update_session_auth_hash(request, customer)  # type: ignore[arg-type]
        request.session.save()  # as SessionMiddleware does with the response
        return f"sessionid={request.session.session_key}"

    async def scenario():
        changer = ws(f"/ws/orders/{order.pk}/", cookie=changer_cookie)
        other = ws(f"/ws/orders/{order.pk}/", cookie=other_cookie)
        for socket in (changer, other):
            assert (await opened(socket))["type"] == "order.snapshot"
        new_cookie = await in_thread(change_password)
        # the other session's socket is closed without a frame from it, and so is the changing
        # session's socket under its old key (its page reconnects under the new one)
        assert await closed_with(other) == 4401
        assert await closed_with(changer) == 4401
        # the session that changed the password is still signed in, and stays so
        again = ws(f"/ws/orders/{order.pk}/", cookie=new_cookie.encode())
        assert (await opened(again))["type"] == "order.snapshot"
        await asyncio.sleep(1)
        await pong(again)
        await again.disconnect()

    async_to_sync(scenario)()


def test_a_deactivated_users_socket_is_closed(checks, customer, password):
    cookie, _ = session_cookie(customer, password)
    token = api_token_issue(user=customer)

    async def scenario():
        sockets = [ws("/ws/me/", cookie=cookie), ws("/ws/me/", token)]
        for socket in sockets:
            assert (await socket.connect())[0]
            await pong(socket)
        await in_thread(lambda: type(customer).objects.filter(pk=customer.pk).update(is_active=False))
        for socket in sockets:
            await socket.send_json_to({"type": "ping"})
            assert await closed_with(socket) == 4401

    async_to_sync(scenario)()


def test_a_revoked_bearer_tokens_socket_is_closed_on_its_next_frame_and_on_the_timer(checks, customer):
    frame_token, silent_token = api_token_issue(user=customer), api_token_issue(user=customer)

    async def on_a_frame():
        by_frame, silent = ws("/ws/me/", frame_token), ws("/ws/me/", silent_token)
        for socket in (by_frame, silent):
            assert (await socket.connect())[0]
            await pong(socket)
        # when the tokens are revoked
        await in_thread(lambda: ApiToken.objects.filter(user=customer).delete())
        # then a frame closes its socket at once, before the frame is answered
        await by_frame.send_json_to({"type": "ping"})
        assert await by_frame.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        await by_frame.disconnect()
        # (a silent socket waits for its timer: a minute here)
        assert await silent.receive_nothing(timeout=0.5)
        await silent.disconnect()

    async_to_sync(on_a_frame)()

    checks.LIVE_AUTH_CHECK_SECONDS = 0.3
    checks.LIVE_AUTH_RECHECK_SECONDS = 600
    token = api_token_issue(user=customer)

    async def on_the_timer():
        socket = ws("/ws/me/", token)
        assert (await socket.connect())[0]
        await pong(socket)
        await in_thread(lambda: ApiToken.objects.filter(user=customer).delete())
        assert await closed_with(socket) == 4401

    async_to_sync(on_the_timer)()


def test_staff_removed_closes_the_kitchen_and_the_order_screens_the_owner_stays(checks, customer, restaurant, menu):
    checks.LIVE_AUTH_CHECK_SECONDS = 0.3
    checks.LIVE_AUTH_RECHECK_SECONDS = 600
    cook = a_cook(restaurant)
    cook_token, owner_token = api_token_issue(user=cook), api_token_issue(user=customer)
    order = an_order(customer, menu["pizza"])

    async def scenario():
        kitchen = ws(f"/ws/kitchen/{restaurant.pk}/", cook_token)
        staff_view = ws(f"/ws/orders/{order.pk}/", cook_token)
        owner_view = ws(f"/ws/orders/{order.pk}/", owner_token)
        assert (await opened(kitchen))["type"] == "kitchen.snapshot"
        for socket in (staff_view, owner_view):
            assert (await opened(socket))["type"] == "order.snapshot"
        # when the cook no longer works there
        await in_thread(lambda: StaffMembership.objects.filter(user=cook).delete())
        # then the kitchen screen and the cook's view of the order close with 4403, unasked
        assert await closed_with(kitchen) == 4403
        assert await closed_with(staff_view) == 4403
        # and the order's owner keeps theirs
        await pong(owner_view)
        await owner_view.disconnect()

    async_to_sync(scenario)()


# --- frame size and rate -------------------------------------------------------------------


def test_an_oversized_frame_closes_the_socket_with_1009(settings, customer, restaurant, menu):
    settings.LIVE_MAX_FRAME_BYTES = 256
    token = api_token_issue(user=customer)
    order = an_order(customer, menu["pizza"])

    async def scenario():
        socket = ws(f"/ws/orders/{order.pk}/", token)
        assert (await opened(socket))["type"] == "order.snapshot"
        # a frame at the limit is handled
        head, tail = '{"type": "ping", "pad": "', '"}'
        padded = head + "x" * (256 - len(head) - len(tail)) + tail
        assert frame_size(padded, None) == 256
        await socket.send_to(text_data=padded)
        assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
        # one byte over it (counted in UTF-8: "é" is two) closes the socket
        await socket.send_to(text_data=padded.replace("xx", "é", 1).replace("x", "xx", 1))
        output = await socket.receive_output(timeout=5)
        assert (output["type"], output["code"]) == ("websocket.close", 1009)
        await socket.disconnect()

        public = ws(f"/ws/menus/{restaurant.pk}/")
        assert (await opened(public))["type"] == "menu.snapshot"
        await public.send_to(bytes_data=b"\0" * 257)
        assert await closed_with(public) == 1009

    async_to_sync(scenario)()


def test_a_frame_flood_closes_the_socket_with_4429_and_a_normal_pace_never_does(settings, restaurant, menu):
    settings.LIVE_MESSAGE_RATE = 5
    settings.LIVE_MESSAGE_BURST = 10

    async def scenario():
        calm = ws(f"/ws/boards/{restaurant.pk}/")
        assert (await opened(calm))["type"] == "board.snapshot"
        for _ in range(10):  # a whole burst at once
            await pong(calm)
        for _ in range(5):  # then at the rate
            await asyncio.sleep(0.25)
            await pong(calm)
        await calm.disconnect()

        flood = ws(f"/ws/boards/{restaurant.pk}/")
        assert (await opened(flood))["type"] == "board.snapshot"
        for _ in range(50):
            await flood.send_json_to({"type": "ping"})
        pongs = 0
        while True:
            output = await flood.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                break
            pongs += 1
        assert output["code"] == 4429
        assert pongs == 10
        await flood.disconnect()

    async_to_sync(scenario)()


def test_frames_that_are_not_json_are_answered_not_crashed_on(customer, restaurant):
    cook = a_cook(restaurant)
    token = api_token_issue(user=cook)

    async def scenario():
        socket = ws(f"/ws/kitchen/{restaurant.pk}/", token)
        assert (await opened(socket))["type"] == "kitchen.snapshot"
        for frame in ({"text_data": "{not json"}, {"bytes_data": b"\x01\x02"}):
            await socket.send_to(**frame)
            reply = await socket.receive_json_from(timeout=5)
            assert reply["type"] == "error" and reply["error"]["code"] == "invalid_message"
        await pong(socket)
        await socket.disconnect()

    async_to_sync(scenario)()


# --- connections per address ---------------------------------------------------------------


def test_an_address_gets_n_sockets_the_next_is_refused_and_a_closed_one_frees_its_slot(settings, restaurant, menu):
    settings.LIVE_MAX_SOCKETS_PER_ADDRESS = 3

    async def scenario():
        held = [from_address(ws(f"/ws/menus/{restaurant.pk}/"), "203.0.113.7") for _ in range(3)]
        for socket in held:
            assert (await opened(socket))["type"] == "menu.snapshot"
        assert await slots_taken("203.0.113.7") == 3
        # the fourth from that address is refused, whichever socket it asks for
        for path in (f"/ws/boards/{restaurant.pk}/", "/ws/me/"):
            assert await refusal(from_address(ws(path), "203.0.113.7")) == 4429
        # another address is not
        elsewhere = from_address(ws(f"/ws/menus/{restaurant.pk}/"), "198.51.100.20")
        assert (await opened(elsewhere))["type"] == "menu.snapshot"
        # IPv6 addresses count per /64: another host of the same block shares its slots
        six = [from_address(ws(f"/ws/menus/{restaurant.pk}/"), f"2001:db8:1:2::{n}") for n in range(1, 4)]
        for socket in six:
            assert (await opened(socket))["type"] == "menu.snapshot"
        assert await refusal(from_address(ws(f"/ws/menus/{restaurant.pk}/"), "2001:db8:1:2:ffff::9")) == 4429
        # a socket that closes gives its slot back
        await held.pop().disconnect()
        assert await slots_taken("203.0.113.7") == 2
        again = from_address(ws(f"/ws/menus/{restaurant.pk}/"), "203.0.113.7")
        assert (await opened(again))["type"] == "menu.snapshot"
        for socket in [*held, again, elsewhere, *six]:
            await socket.disconnect()
        assert await slots_taken("203.0.113.7") == 0

    async_to_sync(scenario)()


def test_a_slot_whose_process_died_lapses_with_its_lease():
    async def scenario():
        # a process that took a slot and died without giving it back
        assert await take_slot("192.0.2.44", "dead-socket", cap=1, lease=1)
        assert not await take_slot("192.0.2.44", "new-socket", cap=1, lease=1)
        await asyncio.sleep(1.3)
        assert await take_slot("192.0.2.44", "new-socket", cap=1, lease=30)
        await release_slot("192.0.2.44", "new-socket")

    async_to_sync(scenario)()


@pytest.fixture
def two_daphnes(tmp_path) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    """Two real daphnes behind a (pretend) proxy, sharing the test run's Redis: a cap of 2 sockets
    per address, slots renewed every second (so a dead process's lapse within 5 s)."""
    env = process_env(LIVE_MAX_SOCKETS_PER_ADDRESS="2", LIVE_AUTH_CHECK_SECONDS="1")
    daphnes = []
    for _ in range(2):
        port = free_port()
        with (tmp_path / f"daphne-{port}.log").open("wb") as log:
            command = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port), "--proxy-headers"]
            proc = subprocess.Popen(
                [*command, "passline.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        daphnes.append((port, proc))

    def healthy(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        for port, _ in daphnes:
            wait_until(functools.partial(healthy, port), timeout=60, interval=0.2, what="daphne to serve")
        yield daphnes
    finally:
        for _, proc in daphnes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def test_the_cap_holds_across_two_web_processes_and_a_killed_ones_slots_lapse(two_daphnes, restaurant, menu):
    (first, first_proc), (second, _) = two_daphnes
    address = "203.0.113.50"

    def connect(port: int, client: str = address) -> Any:
        return websockets.connect(
            f"ws://127.0.0.1:{port}/ws/menus/{restaurant.pk}/",
            additional_headers={"Origin": f"http://127.0.0.1:{port}", "X-Forwarded-For": client},
        )

    async def first_frame(socket: Any) -> str:
        return json.loads(await asyncio.wait_for(socket.recv(), 10))["type"]

    async def close_code(socket: Any) -> int:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code

    async def scenario():
        held = [await connect(first), await connect(second)]
        for socket in held:
            assert await first_frame(socket) == "menu.snapshot"
        # a third socket from that address, on either process, is refused
        for port in (first, second):
            assert await close_code(await connect(port)) == 4429
        # the address counted is the one the proxy forwarded, not the proxy's own
        other = await connect(second, "203.0.113.51")
        assert await first_frame(other) == "menu.snapshot"
        await other.close()
        # a socket closed on one process frees its slot for the other
        await held[1].close()
        replacement = await wait_for_a_slot(second)
        # a process killed with its sockets open gives nothing back: its slots lapse
        first_proc.kill()
        first_proc.wait(timeout=10)
        assert await close_code(await connect(second)) == 4429
        started = asyncio.get_running_loop().time()
        late = await wait_for_a_slot(second, timeout=15)
        assert asyncio.get_running_loop().time() - started > 1
        for socket in (replacement, late):
            await socket.close()

    async def wait_for_a_slot(port: int, timeout: float = 5) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            socket = await connect(port)
            try:
                assert await first_frame(socket) == "menu.snapshot"
                return socket
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 4429
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.25)

    asyncio.run(scenario())


# --- anonymous sockets ---------------------------------------------------------------------


def test_an_anonymous_socket_for_a_restaurant_that_does_not_exist_is_refused_with_4404(restaurant, menu):
    async def scenario():
        for kind in ("menus", "boards"):
            for restaurant_id in (restaurant.pk + 1000, 10**30):
                assert await refusal(ws(f"/ws/{kind}/{restaurant_id}/")) == 4404
            socket = ws(f"/ws/{kind}/{restaurant.pk}/")
            assert (await opened(socket))["type"].endswith(".snapshot")
            await socket.disconnect()

    async_to_sync(scenario)()
