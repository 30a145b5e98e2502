"""Which pool each Redis user gets: the URL's server, or the master behind Sentinel."""

from __future__ import annotations

import redis
import redis.asyncio
from redis.sentinel import SentinelConnectionPool

from bus import redis_clients

SENTINELS = [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26379)]


def test_without_sentinels_a_client_connects_to_its_url(settings):
    settings.REDIS_SENTINELS = []
    client = redis_clients.client("redis://cache.example:6380/3", socket_timeout=0.5)
    pool = client.connection_pool
    assert type(pool) is redis.ConnectionPool
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == ("cache.example", 6380, 3, 0.5)


def test_with_sentinels_a_client_asks_them_for_the_master_and_keeps_the_urls_db_and_password(settings):
    settings.REDIS_SENTINELS = SENTINELS
    settings.REDIS_SENTINEL_MASTER = "passline"
    settings.REDIS_SENTINEL_PASSWORD = "sentinel-secret"
    pool = redis_clients.client("redis://:master-secret@ignored:1/2", socket_timeout=0.5).connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "passline" and pool.is_master
    assert "host" not in pool.connection_kwargs and "port" not in pool.connection_kwargs
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (2, "master-secret")
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["host"], sentinel["password"], sentinel["socket_timeout"]) == ("10.0.0.1", "sentinel-secret", 0.5)


def test_the_cache_pool_class_builds_a_sentinel_pool_from_the_cache_url(settings):
    settings.REDIS_SENTINELS = SENTINELS
    settings.REDIS_SENTINEL_MASTER = "passline"
    pool = redis_clients.SentinelPool.from_url("redis://sentinel/1", max_connections=7)
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.connection_kwargs["db"], pool.max_connections) == (1, 7)


def test_a_channel_layer_host_gets_a_blocking_pool_in_either_form():
    plain = redis_clients.async_pool({"address": "redis://127.0.0.1:6379/0", "pool_timeout": 3, "max_connections": 9})
    assert isinstance(plain, redis.asyncio.BlockingConnectionPool)
    assert (plain.timeout, plain.max_connections) == (3, 9)

    behind = redis_clients.async_pool(
        {
            "address": "redis://sentinel/4",
            "sentinels": SENTINELS,
            "master_name": "passline",
            "pool_timeout": 3,
            "max_connections": 9,
            "socket_timeout": 15,
        }
    )
    assert isinstance(behind, redis_clients.BlockingSentinelPool)
    assert isinstance(behind, redis.asyncio.BlockingConnectionPool)
    assert (behind.service_name, behind.timeout, behind.max_connections) == ("passline", 3, 9)
    assert (behind.connection_kwargs["db"], behind.connection_kwargs["socket_timeout"]) == (4, 15)
    assert len(behind.sentinel_manager.sentinels) == 3
