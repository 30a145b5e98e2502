"""A hint to the outbox relay that new rows have committed, so it publishes them at once
instead of at its next poll.

Only a hint: the relay still polls (``relay_outbox --idle-interval``), so a lost nudge, or
Redis being away, costs at most one poll interval, never a message. Writers send it after
their transaction commits, never inside it, and a failure to send is logged and ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection, transaction

from passline.redis_hints import hint_client

logger = logging.getLogger(__name__)

def channel() -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:outbox"


def nudge() -> None:
    """Tell any listening relay that the outbox has new rows."""
    try:
        hint_client().publish(channel(), b"1")
    except redis.RedisError as error:
        logger.debug("outbox nudge not sent: %r", error)


def nudge_after_commit() -> None:
    """Nudge once the current transaction commits (once per transaction, however many rows)."""
    # Django keeps the transaction's callbacks as (savepoint ids, callable, robust).
    if not any(entry[1] is nudge for entry in connection.run_on_commit):
        transaction.on_commit(nudge, robust=True)


def listen(on_nudge: Callable[[], None], stopping: threading.Event) -> None:
    """Call ``on_nudge`` for every nudge until ``stopping`` is set (run it in a thread of its own);
    reconnects to Redis with back-off, since the relay's poll covers the gaps."""
    delay = 0.5
    while not stopping.is_set():
        try:
            pubsub = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2,
                                          health_check_interval=30).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel())
            delay = 0.5
            while not stopping.is_set():
                # A timeout lets the loop see ``stopping``; a message is a nudge.
                if pubsub.get_message(timeout=1.0) is not None:
                    on_nudge()
            pubsub.close()
        except redis.RedisError as error:
            logger.warning("relay: no nudges from Redis (%r); polling meanwhile", error)
            stopping.wait(delay)
            delay = min(delay * 2, 10.0)
