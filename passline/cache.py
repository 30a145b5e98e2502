"""The cache backend: Django's ``RedisCache`` with one client, and so one connection pool, per
process.

Django keeps a cache object per thread and async context (``caches`` is an asgiref
``Local``), and each new object builds its own client with its own pool. Under ASGI every
request runs in a context of its own, so every request that touched the cache (a rate limit,
a cached session, a breaker's state) opened a new TCP connection to Redis and handshook on it:
a fifth of the web process's CPU under the order load (docs/performance.md). redis-py's pools
are thread-safe, so here every cache object of the same server and options shares one client.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple[tuple[str, ...], str], RedisCacheClient] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self) -> Any:
        cache: Any = self  # (RedisCache's own attributes, which django-stubs leave out)
        key = (tuple(cache._servers), repr(sorted(cache._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = cache._class(cache._servers, **cache._options)
            return client
