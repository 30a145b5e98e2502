"""WebSocket consumers of CONTRACT.md: the base every live socket shares, a customer's order
(``/ws/orders/{id}/``) and the signed-in customer's own orders (``/ws/me/``); a restaurant's
kitchen screen, menu and pick-up board are in live/restaurant_consumers.py.

The page is a view of the database: on connect the socket joins the order's group first and
then sends a snapshot read after joining, so no change between the two is lost; changes are
applied only when their version is newer than the last one sent, so a duplicate or late
group message never shows an older state; a client that reconnects sends
``{"type": "resume", "after_version": N}`` and gets every change after N from the database, in
order (the group layer may drop messages; the database does not).

Redis away: an upgrade is accepted and closed with 1013 (try again later; pages reconnect with
back-off), never left to fail as a 500; an open socket stays open, and when Redis answers again
(live/layer.py tells every socket) it joins its groups again and catches up from the database.

Authorized at connect is not authorized for good: a socket that needed a signed-in user checks,
before it handles a client frame (at most every ``LIVE_AUTH_RECHECK_SECONDS``) and every
``LIVE_AUTH_CHECK_SECONDS`` on a timer, that its session or token still holds (else 4401,
live/revocation.py) and that the user may still see what it shows (else 4403). Every socket
obeys the limits of live/limits.py: frames over ``LIVE_MAX_FRAME_BYTES`` close it with 1009,
frames faster than its token bucket allows with 4429, and an address that already holds
``LIVE_MAX_SOCKETS_PER_ADDRESS`` sockets is refused with 4429 at connect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from asgiref.typing import WebSocketConnectEvent, WebSocketDisconnectEvent, WebSocketReceiveEvent
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from redis.exceptions import RedisError

from bus.correlation import correlation_context
from live import metrics as live_metrics
from live import shutdown as live_shutdown
from live.groups import customer_group, order_group, session_group
from live.limits import (
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY,
    Limits,
    TokenBucket,
    address_key,
    frame_size,
    release_slot,
    renew_slot,
    take_slot,
)
from live.presence import awatching_report
from live.revocation import Credentials, credentials_of, current_user
from ordering.api_schemas import order_out
from ordering.exceptions import NotFound
from ordering.models import OrderEvent
from ordering.selectors import is_restaurant_staff, order_detail
from ordering.status import STATUS_LABELS, OrderStatus

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# RFC 6455's "try again later": Redis is away; the pages reconnect with back-off.
CLOSE_TRY_AGAIN_LATER = 1013

_current_user = database_sync_to_async(current_user)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Base of the live sockets: the groups a socket joined (left on disconnect), the browser
    session's group (a socket opened with a session closes with 4401 when it logs out), the
    application-level heartbeat and JSON with dates and decimals; the limits on what a client
    may send, and the re-checks of a signed-in socket's credentials and rights."""

    # Sockets that need a signed-in user re-check it while they live (4401 / 4403).
    needs_user = False
    # Set on connect: the limits in force and this socket's frame budget.
    limits: Limits
    bucket: TokenBucket
    # The address whose connection slot this socket holds (None: it holds none).
    address: str | None = None
    # What authenticated the socket's user, for the re-checks (None: nothing to re-check).
    credentials: Credentials | None = None
    checked_at = 0.0
    # The server closed (or refused) the socket: frames still arriving are not handled.
    closing = False
    refused = False
    watcher: asyncio.Task[None] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels 4.2+ runs close_old_connections() through sync_to_async before *every*
        # message: a hop through the one thread-sensitive executor per socket per frame, which
        # serialises a fan-out to a thousand screens behind a single thread. Every database
        # call of these consumers goes through database_sync_to_async, which closes stale
        # connections around itself, so the hop buys nothing here.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: WebSocketConnectEvent) -> None:
        self.limits = Limits.from_settings()
        self.bucket = TokenBucket(self.limits.message_rate, self.limits.message_burst)
        if live_shutdown.going_away():
            # This daphne is stopping (live/shutdown.py): the page reconnects to another one.
            await self.refuse(live_shutdown.CLOSE_GOING_AWAY, reason="server going away")
            return
        try:
            if not await self.take_slot():
                logger.warning(
                    "live socket refused: its address holds %s sockets already",
                    self.limits.max_sockets_per_address,
                    extra={"path": self.scope.get("path"), "address": address_key(self.scope.get("client"))},
                )
                await self.refuse(CLOSE_TOO_MANY, reason="too many sockets from this address")
                return
            await self.connect()
        except RedisError as error:
            # Joining a group needs Redis: without it the socket would hear nothing, and the
            # exception would reach daphne as a 500 on the upgrade.
            logger.warning("live socket refused, Redis is away: %r", error, extra={"path": self.scope.get("path")})
            await self.refuse(CLOSE_TRY_AGAIN_LATER)
            return
        if self.accepted and not self.refused:
            self.counted_as = live_metrics.opened(self)
            if self.needs_user:
                self.credentials = credentials_of(self.scope)
                self.checked_at = time.monotonic()
            if self.credentials is not None or self.address is not None:
                self.watcher = asyncio.get_running_loop().create_task(self.watch())

    async def take_slot(self) -> bool:
        """Count the socket against its client's address; False when the address is at its cap."""
        cap = self.limits.max_sockets_per_address
        address = address_key(self.scope.get("client"))
        if cap <= 0 or address is None:
            return True
        if not await take_slot(address, self.channel_name, cap=cap, lease=self.limits.slot_seconds):
            return False
        self.address = address
        return True

    async def watch(self) -> None:
        """While the socket lives: renew its connection slot and re-check its credentials, every
        ``LIVE_AUTH_CHECK_SECONDS`` give or take a tenth (the sockets of one restart spread out)."""
        interval = self.limits.check_seconds
        # Spreading timers, not a secret (bandit B311).
        delay = interval * random.uniform(0.5, 1.0)  # nosec B311
        while not self.closing:
            await asyncio.sleep(delay)
            delay = interval * random.uniform(0.9, 1.1)  # nosec B311
            if self.closing:
                return
            try:
                if self.address is not None:
                    await renew_slot(self.address, self.channel_name, lease=self.limits.slot_seconds)
                if self.credentials is not None:
                    await self.recheck()
            except RedisError as error:
                logger.warning("live socket's slot not renewed, Redis is away: %r", error)
            except Exception:  # a timer must not die silently; the next round tries again
                logger.exception("live socket's periodic check failed", extra={"path": self.scope.get("path")})

    async def recheck(self) -> bool:
        """Whether the socket may stay open: its session or token still holds (else it is closed
        with 4401) and its user may still see what it shows (else 4403). With the database away
        the socket stays open; the next check asks again."""
        credentials = self.credentials
        if credentials is None or self.closing:
            return not self.closing
        self.checked_at = time.monotonic()
        allowed = False
        try:
            user = await _current_user(credentials)
            if user is not None:
                self.scope["user"] = user
                allowed = await self.still_allowed()
        except DatabaseError as error:
            logger.warning("live socket's access not re-checked, the database is away: %r", error)
            return True
        if user is None:
            logger.info(
                "live socket closed: its %s no longer authenticates user %s",
                credentials.kind,
                credentials.user_id,
                extra={"path": self.scope.get("path"), "user_id": credentials.user_id},
            )
            await self.shut(CLOSE_UNAUTHENTICATED)
            return False
        if not allowed:
            logger.info(
                "live socket closed: user %s may no longer see it",
                credentials.user_id,
                extra={"path": self.scope.get("path"), "user_id": credentials.user_id},
            )
            await self.shut(CLOSE_FORBIDDEN)
            return False
        return True

    async def still_allowed(self) -> bool:
        """Whether the socket's (fresh) user may still see what the socket shows."""
        return True

    async def websocket_receive(self, message: WebSocketReceiveEvent) -> None:
        if self.closing:
            return
        size = frame_size(message.get("text"), message.get("bytes"))
        if size > self.limits.max_frame_bytes:
            logger.warning(
                "live socket closed: a %s-byte frame", size, extra={"path": self.scope.get("path"), "bytes": size}
            )
            await self.shut(CLOSE_TOO_BIG, reason="frame too big")
            return
        if not self.bucket.take():
            logger.warning(
                "live socket closed: frames faster than %s/s",
                self.limits.message_rate,
                extra={"path": self.scope.get("path"), "address": address_key(self.scope.get("client"))},
            )
            await self.shut(CLOSE_TOO_MANY, reason="too many messages")
            return
        if self.credentials is not None and time.monotonic() - self.checked_at >= self.limits.recheck_seconds:
            if not await self.recheck():
                return
        await super().websocket_receive(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # Binary frames and text that is not JSON are frames this socket does not take, not a
        # crash (which daphne would answer with 1011 and a traceback in the log per frame).
        content: Any = None
        if text_data is not None:
            try:
                content = await self.decode_json(text_data)
            except ValueError:
                content = None
        await self.receive_json(content, **kwargs)

    async def shut(self, code: int, reason: str = "") -> None:
        """Close the socket from the server's side, once."""
        if self.closing:
            return
        self.closing = True
        await self.close(code=code, reason=reason or None)

    async def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        # As above: without Channels' close_old_connections() hop, which 10,000 sockets
        # closing at once (a daphne restart, a Wi-Fi outage) would queue behind one thread.
        await self.disconnect(message["code"])
        raise StopConsumer()

    accepted = False
    # The kind this socket is counted as among the open ones ("": not counted).
    counted_as = ""

    # Every frame is counted: send_json (which goes past send, to channels' own) and send (the
    # pre-encoded frames of the kitchen and the dashboard).
    async def send_json(self, content: Any, close: bool = False) -> None:
        live_metrics.frame_sent(self.counted_as or live_metrics.kind_of(self))
        await super().send_json(content, close)

    async def send(  # type: ignore[override]  # AsyncWebsocketConsumer's own signature
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if text_data is not None or bytes_data is not None:
            live_metrics.frame_sent(self.counted_as or live_metrics.kind_of(self))
        await super().send(text_data, bytes_data, close)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        if not self.accepted:
            self.accepted = True
            await super().accept(subprotocol, headers)
            live_shutdown.opened(self)  # closed with 1001 when this daphne stops

    async def join(self, group: str) -> None:
        self.__dict__.setdefault("groups_joined", []).append(group)
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined_at = time.monotonic()

    async def live_reconnected(self, event: dict[str, Any]) -> None:
        """Redis answers again after an error (live/layer.py): join the groups again (a restart
        forgot them) and catch up on what was missed meanwhile."""
        if not self.accepted or self.__dict__.get("closed"):
            return
        try:
            for group in self.__dict__.get("groups_joined", []):
                await self.channel_layer.group_add(group, self.channel_name)
        except RedisError as error:
            logger.warning("live socket not back in its groups yet: %r", error)
            return
        self.joined_at = time.monotonic()
        await self.resync()

    async def resync(self) -> None:
        """Send what may have been missed while group messages could not arrive."""

    async def rejoin_if_due(self) -> None:
        """Join the socket's groups again once half the layer's group expiry has passed.

        channels-redis forgets a member ``group_expiry`` seconds after it joined (a day by
        default), however alive the socket: a kitchen tablet left open would go silently deaf.
        """
        expiry = getattr(self.channel_layer, "group_expiry", None)
        joined_at = self.__dict__.get("joined_at")
        if expiry is None or joined_at is None or time.monotonic() - joined_at < expiry / 2:
            return
        try:
            for group in self.__dict__.get("groups_joined", []):
                await self.channel_layer.group_add(group, self.channel_name)
        except RedisError as error:
            logger.warning("live socket not rejoined, Redis is away: %r", error)  # the next ping tries again
            return
        self.joined_at = time.monotonic()

    async def join_session(self) -> None:
        key = getattr(self.scope.get("session"), "session_key", None)
        bearer = b"authorization" in dict(self.scope.get("headers") or [])
        if key and not bearer:
            await self.join(session_group(key))

    async def disconnect(self, code: int) -> None:
        self.closed = True
        self.closing = True
        live_shutdown.closed(self)
        if self.counted_as:
            live_metrics.closed(self.counted_as)
            self.counted_as = ""
        if self.watcher is not None:
            self.watcher.cancel()
        if self.address is not None:
            try:
                await release_slot(self.address, self.channel_name)
            except RedisError as error:
                # The slot lapses with its lease.
                logger.warning("live socket's slot not given back, Redis is away: %r", error)
            self.address = None
        try:
            for group in self.__dict__.get("groups_joined", []):
                await self.channel_layer.group_discard(group, self.channel_name)
        except RedisError as error:
            # The membership lapses with the group expiry; a message to it meanwhile is dropped.
            logger.warning("live socket's groups not left, Redis is away: %r", error)

    async def refuse(self, code: int, reason: str = "") -> None:
        """Refuse the socket with the contract's close code (4401, 4403, 4404; 4429 when its
        address holds too many sockets; 1013 without Redis).

        Accepted first, then closed: a close before accept() reaches a real client as a bare
        HTTP 403 on the upgrade (daphne), so it could not tell "log in" from "not yours". By
        then no group has been joined and nothing is sent but the close.
        """
        self.refused = True
        await self.accept()
        await self.shut(code, reason)

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self.shut(CLOSE_UNAUTHENTICATED)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not await self.on_client_message(content) and self.client_message_hint:
            await self.send_json(
                {"type": "error", "error": {"code": "invalid_message", "message": self.client_message_hint}}
            )

    # Sockets that take client frames say what they take when they get something else.
    client_message_hint = ""

    async def on_client_message(self, content: Any) -> bool:
        """Handle a client frame; False when it is not understood."""
        if isinstance(content, dict) and content.get("type") == "ping":
            # A client that hears no pong reconnects (a half-open connection behind a proxy
            # or a sleeping tablet is otherwise silent).
            await self.send_json({"type": "pong"})
            await self.rejoin_if_due()
            return True
        return False

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)


class StaffScreen(LiveConsumer):
    """A staff screen (the kitchen's, the dashboard): ``{"type": "sync"}`` asks for a fresh
    snapshot, and someone who no longer works there is closed with 4403 instead of getting it."""

    client_message_hint = 'Send {"type": "sync"} or {"type": "ping"}.'
    restaurant_id: int | None = None
    needs_user = True

    async def still_allowed(self) -> bool:
        """Whether the socket's user may see this screen (asked on connect and on every sync)."""
        raise NotImplementedError

    def screen_group(self) -> str:
        raise NotImplementedError

    async def send_snapshot(self) -> None:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        restaurant_id = self.scope["url_route"]["kwargs"].get("restaurant_id")
        self.restaurant_id = int(restaurant_id) if restaurant_id is not None else None
        if not await self.still_allowed():
            await self.refuse(CLOSE_FORBIDDEN)
            return
        # Join first, then read, as every live socket does.
        await self.join(self.screen_group())
        await self.join_session()
        await self.accept()
        await self.send_snapshot()

    async def resync(self) -> None:
        await self.send_snapshot()

    async def on_client_message(self, content: Any) -> bool:
        if isinstance(content, dict) and content.get("type") == "sync":
            if not await self.still_allowed():
                await self.shut(CLOSE_FORBIDDEN)
                return True
            await self.send_snapshot()
            return True
        return await super().on_client_message(content)


def update_frame(
    *, order_id: int, status: str, version: int, at: object, correlation_id: str | None = None
) -> dict[str, Any]:
    """An ``order.update`` frame; with the correlation id of the request that made the change
    where it is known (an operator finds the request's log lines by it)."""
    frame = {"type": "order.update", "order_id": order_id, "status": status, "version": version, "at": at}
    if correlation_id:
        frame["correlation_id"] = correlation_id
    return frame


def update_frame_of(event: dict[str, Any]) -> dict[str, Any]:
    """The ``order.update`` frame of a group message from the bridge."""
    return update_frame(
        order_id=event["order_id"],
        status=event["status"],
        version=event["version"],
        at=event["at"],
        correlation_id=event.get("correlation_id"),
    )


def log_push(socket: str, frame: dict[str, Any]) -> None:
    """A frame of an order pushed to a socket, logged under the request that caused it."""
    if logger.isEnabledFor(logging.DEBUG):
        with correlation_context(frame.get("correlation_id") or "-"):
            logger.debug(
                "%s pushed to a %s socket",
                frame["type"],
                socket,
                extra={"order_id": frame.get("order_id"), "version": frame.get("version")},
            )


@database_sync_to_async
def _allowed_order(user, order_id: int):
    """The order if ``user`` owns it or works at its restaurant, else None."""
    try:
        order = order_detail(order_id=order_id)
    except NotFound:
        return None
    if order.customer_id == user.pk or is_restaurant_staff(user=user, restaurant_id=order.restaurant_id):
        return order
    return None


@database_sync_to_async
def _snapshot(order_id: int) -> dict[str, Any]:
    return order_out(order_detail(order_id=order_id))


@database_sync_to_async
def _events_after(order_id: int, version: int) -> list[dict[str, Any]]:
    return [
        update_frame(order_id=order_id, status=e.status, version=e.version, at=e.at, correlation_id=e.correlation_id)
        for e in OrderEvent.objects.filter(order_id=order_id, version__gt=version).order_by("version")
    ]


async def unseen_frames(order_id: int, last: int | None, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """What a socket that has shown ``last`` must send for ``frame``: nothing if it is not newer
    (a duplicate, or late), the database's steps up to it in order if there is a gap (a dropped
    group message), else the frame. ``last`` None: the socket has not seen the order yet."""
    if last is None:
        return [frame]
    if frame["version"] <= last:
        return []
    if frame["version"] > last + 1:
        return [f for f in await _events_after(order_id, last) if f["version"] < frame["version"]] + [frame]
    return [frame]


class OrderConsumer(LiveConsumer):
    """One order's live updates, for its customer or its restaurant's staff."""

    order_id: int
    # The newest version the client has, from the snapshot or an update frame: older group
    # messages are not sent.
    last_version = 0
    # The newest version sent as an ``order.update`` frame: a resume replays from the database
    # only what was not sent as one (the snapshot does not count: the contract says so).
    updates_through = 0
    needs_user = True

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        self.order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        # Another customer's order looks exactly like a missing one.
        order = await _allowed_order(user, self.order_id)
        if order is None:
            await self.refuse(CLOSE_FORBIDDEN)
            return
        self.is_owner = order.customer_id == user.pk
        # Join first, then read: a change committed in between arrives as a group message
        # and is dropped by version if the snapshot already has it.
        await self.join(order_group(self.order_id))
        await self.join_session()
        await self.accept()
        snapshot = await _snapshot(self.order_id)
        self.last_version = snapshot["version"]
        await self.send_json({"type": "order.snapshot", "order": snapshot})

    client_message_hint = (
        'Send {"type": "resume", "after_version": N}, {"type": "watching", "visible": true|false} or {"type": "ping"}.'
    )
    is_owner = False
    watching = False

    async def still_allowed(self) -> bool:
        # An order's owner never changes; staff of its restaurant may stop working there.
        return self.is_owner or await _allowed_order(self.scope["user"], self.order_id) is not None

    async def on_client_message(self, content: Any) -> bool:
        if isinstance(content, dict) and content.get("type") == "watching":
            visible = content.get("visible")
            if not isinstance(visible, bool):
                return False
            # The customer sees the order's steps happen: the notifier spares them the email
            # and SMS (live/presence.py). Staff watching an order count for nothing.
            if self.is_owner and (visible or self.watching):
                self.watching = visible
                await awatching_report(order_id=self.order_id, channel_name=self.channel_name, visible=visible)
            return True
        if isinstance(content, dict) and content.get("type") == "resume":
            after = content.get("after_version")
            if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
                # Every step after N as an update frame, in order, even those the snapshot
                # already showed; never one twice (pages send this with every heartbeat, and
                # usually lack nothing).
                for frame in await _events_after(self.order_id, max(after, self.updates_through)):
                    self._sent(frame["version"])
                    await self.send_json(frame)
                return True
            return False
        return await super().on_client_message(content)

    async def disconnect(self, code: int) -> None:
        if self.watching:
            self.watching = False
            await awatching_report(order_id=self.order_id, channel_name=self.channel_name, visible=False)
        await super().disconnect(code)

    async def order_update(self, event: dict[str, Any]) -> None:
        """A group message from the bridge."""
        await self._send_update(update_frame_of(event))

    async def _send_update(self, frame: dict[str, Any]) -> None:
        for unseen in await unseen_frames(self.order_id, self.last_version, frame):
            self._sent(unseen["version"])
            await self.send_json(unseen)
            log_push("order", unseen)

    def _sent(self, version: int) -> None:
        self.last_version = max(self.last_version, version)
        self.updates_through = max(self.updates_through, version)

    async def resync(self) -> None:
        for frame in await _events_after(self.order_id, self.last_version):
            self._sent(frame["version"])
            await self.send_json(frame)


class CustomerConsumer(LiveConsumer):
    """The signed-in customer's own orders, for notifications on any page of the site."""

    needs_user = True

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        await self.join(customer_group(user.pk))
        await self.join_session()
        await self.accept()

    async def order_update(self, event: dict[str, Any]) -> None:
        frame = update_frame_of(event)
        frame["label"] = STATUS_LABELS[OrderStatus(event["status"])]
        await self.send_json(frame)
        log_push("me", frame)

    async def customer_notification(self, event: dict[str, Any]) -> None:
        """A notification from the notifier, shown as a toast (and by the browser when the
        customer allowed it); ``key`` lets several tabs show it once."""
        await self.send_json(
            {
                "type": "notification",
                **{k: event[k] for k in ("id", "key", "message", "title", "body", "link", "order_id")},
            }
        )
