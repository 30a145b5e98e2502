"""A hint to the outbox relay that new rows have committed, so it publishes them at once
instead of at its next poll.

Only a hint: the relay still polls (``relay_outbox --idle-interval``), so a lost nudge, or
Redis being away, costs at most one poll interval, never a message. A writer's commit only
asks for a nudge; a sender thread of the process publishes it, so a writer never waits on
Redis (a stalled Redis would otherwise hold every commit for the client's time-out). Nudges
asked for while one is being sent are sent as one, and those asked for while Redis fails
are dropped: the relay's poll covers them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection, transaction

from bus import redis_clients
from bus.redis_hints import hint_client

logger = logging.getLogger(__name__)


def channel() -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:outbox"


# After a failed send, nudges are dropped for this long (Redis is away or slow; the relay polls).
PAUSE_AFTER_FAILURE = 1.0


class _Sender:
    """One thread per process that publishes the nudges writers ask for, one at a time."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ask(self) -> None:
        self._wanted.set()
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                # A forked child (a worker started by a supervisor) has no thread of its parent.
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="outbox-nudges", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            # Every nudge asked for until now goes out as this one.
            self._wanted.clear()
            try:
                hint_client().publish(channel(), b"1")
            except redis.RedisError as error:
                logger.debug("outbox nudge not sent: %r", error)
                time.sleep(PAUSE_AFTER_FAILURE)
                self._wanted.clear()


_sender = _Sender()


def nudge() -> None:
    """Ask the process's sender to tell any listening relay that the outbox has new rows (at once)."""
    _sender.ask()


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
            pubsub = redis_clients.client(socket_connect_timeout=2, health_check_interval=30).pubsub(
                ignore_subscribe_messages=True
            )
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
