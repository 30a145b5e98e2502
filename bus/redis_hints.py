"""One Redis client per process for hints (the relay's nudges, who watches an order live):
short timeouts, because a request or a handler must never wait long on a hint."""

from __future__ import annotations

import threading

import redis

from bus import redis_clients

_client: redis.Redis | None = None
_lock = threading.Lock()


def hint_client() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            _client = redis_clients.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        return _client
