"""Every Redis connection of the application starts here: one plain server, or through Redis
Sentinel to whichever server is the master now.

With ``REDIS_SENTINELS`` empty a client connects to the host of its URL (``REDIS_URL``,
``CACHE_URL``), as always. With sentinels set, a URL's host and port are not used: each new
connection asks the sentinels where the master named ``REDIS_SENTINEL_MASTER`` is and connects
there, with the URL's database number and password. After a failover the first command on an
old connection fails (the old master is gone, or answers READONLY as a replica); the pool drops
that connection and the next one goes to the new master. Callers already treat a
``redis.RedisError`` as "Redis is away for a moment", so a switch of master looks to them like a
short outage.

Users: the hints client (bus/redis_hints.py: nudges, presence, the worker registry,
notification limits, readiness), the breakers, the scheduler's lock, the relay's nudge
listener, the cache and sessions (``SentinelPool`` as Django's ``pool_class``) and the channel
layer (``async_pool``, for live/layer.py).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

# A sentinel that does not answer within this long is skipped for the next one.
SENTINEL_TIMEOUT = 0.5


def sentinel_enabled() -> bool:
    return bool(settings.REDIS_SENTINELS)


def sentinel_kwargs() -> dict[str, Any]:
    """How to talk to the sentinels themselves (short timeouts: a dead one is skipped quickly)."""
    kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}
    if settings.REDIS_SENTINEL_PASSWORD:
        kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    return kwargs


def _master_kwargs(url: str) -> dict[str, Any]:
    """What of ``url`` still applies behind Sentinel: database, user, password (not host, port)."""
    kwargs = parse_url(url) if url else {}
    for unused in ("host", "port", "path", "connection_class"):
        kwargs.pop(unused, None)
    return kwargs


def client(url: str | None = None, **options: Any) -> redis.Redis:
    """A client of the Redis at ``url`` (default ``REDIS_URL``), or of the current master."""
    url = url or settings.REDIS_URL
    return redis.Redis(connection_pool=pool(url, **options))


def pool(url: str, **options: Any) -> redis.ConnectionPool:
    if not sentinel_enabled():
        return redis.ConnectionPool.from_url(url, **options)
    manager = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs())
    return SentinelConnectionPool(settings.REDIS_SENTINEL_MASTER, manager, **{**_master_kwargs(url), **options})


class SentinelPool(SentinelConnectionPool):
    """Django's ``RedisCache`` ``pool_class`` with Sentinel: it calls ``from_url(LOCATION, **OPTIONS)``."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelPool:
        manager = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs())
        return cls(settings.REDIS_SENTINEL_MASTER, manager, **{**_master_kwargs(url), **options})


class BlockingSentinelPool(AsyncSentinelConnectionPool, redis.asyncio.BlockingConnectionPool):
    """The master's connections behind Sentinel, from a pool that makes a burst wait for a free
    connection (``timeout`` seconds) instead of failing, as live/layer.py wants."""


def async_pool(host: dict[str, Any]) -> redis.asyncio.ConnectionPool:
    """A blocking asyncio pool for one channels-redis ``hosts`` entry: ``{"address": url, ...}``,
    or channels-redis's Sentinel form ``{"sentinels": [(host, port), ...], "master_name": ...,
    "sentinel_kwargs": {...}, ...}`` (with an ``address`` too, its database and password apply).
    ``pool_timeout`` is how long a command waits for a free connection."""
    host = dict(host)
    timeout = host.pop("pool_timeout", 20)
    address = host.pop("address", "")
    master_name = host.pop("master_name", None)
    if master_name is None and address:
        return redis.asyncio.BlockingConnectionPool.from_url(address, timeout=timeout, **host)
    if master_name is None:  # host, port, ... as keywords
        return redis.asyncio.BlockingConnectionPool(timeout=timeout, **host)
    manager = redis.asyncio.Sentinel(
        host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", sentinel_kwargs())
    )
    return BlockingSentinelPool(master_name, manager, timeout=timeout, **{**_master_kwargs(address), **host})  # type: ignore[no-untyped-call]
