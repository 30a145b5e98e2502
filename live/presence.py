"""Who is watching an order live right now, in Redis: the notifier sends no email or SMS for a
step the customer sees happen on the tracking page (unless they asked for it).

A watcher is an open tracking socket of the order's customer whose page is visible. The page
says so on connect, when it is shown or hidden, and with every heartbeat (20 s); each report
holds for ``WATCH_SECONDS``, so a page that died without closing (a crashed browser, a dead
daphne) stops counting within that time instead of silencing notifications for good.

Only a hint, like the rest of Redis here: if Redis is away, nobody counts as watching, and the
customer gets the email — a notification too many beats one missed.
"""

from __future__ import annotations

import logging
import time

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from bus.redis_hints import hint_client

logger = logging.getLogger(__name__)

# Longer than two heartbeats of the page (live-socket.js: 20 s).
WATCH_SECONDS = 50


def _key(order_id: int) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:watching:order.{order_id}"


def watching_report(*, order_id: int, channel_name: str, visible: bool) -> None:
    """Record that this socket shows the order on a visible page now (or no longer)."""
    key = _key(order_id)
    try:
        if visible:
            now = time.time()
            pipe = hint_client().pipeline()
            pipe.zadd(key, {channel_name: now + WATCH_SECONDS})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, WATCH_SECONDS * 2)
            pipe.execute()
        else:
            hint_client().zrem(key, channel_name)
    except redis.RedisError as error:
        logger.warning("watching report not kept: %r", error, extra={"order_id": order_id})


def is_watched(order_id: int) -> bool:
    """Whether the order's customer has its tracking page open and visible at this moment."""
    return order_id in watched_orders([order_id])


def watched_orders(order_ids: list[int]) -> set[int]:
    """Which of the orders have their tracking page open and visible now (one round trip)."""
    if not order_ids:
        return set()
    now = time.time()
    try:
        pipe = hint_client().pipeline(transaction=False)
        for order_id in order_ids:
            pipe.zcount(_key(order_id), now, "+inf")
        return {order_id for order_id, count in zip(order_ids, pipe.execute()) if count}
    except redis.RedisError as error:
        logger.warning("watchers unknown: %r", error, extra={"orders": len(order_ids)})
        return set()


# For the WebSocket consumers: off the event loop, and not through the one thread that
# database calls share (a report is a Redis round trip, not a database call).
awatching_report = sync_to_async(watching_report, thread_sensitive=False)
