"""Which pool each Redis user gets: the URL's server, or the master behind Sentinel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis
import redis.asyncio
from redis.sentinel import SentinelConnectionPool

from bus import redis_clients
from tests.support import ROOT

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


def test_the_settings_turn_every_redis_user_to_sentinel_when_sentinels_are_named():
    # given a process started with sentinels named (settings are read once, at start)
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.REDIS_SENTINELS, s.REDIS_SENTINEL_MASTER, "
        "s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0], s.CACHES['default'].get('OPTIONS')]))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "passline.settings",
        "REDIS_SENTINELS": "10.0.0.1:26379, [fd00::2]:26380",
        "REDIS_SENTINEL_MASTER": "mymaster",
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    sentinels, master, layer_host, cache_options = json.loads(out.stdout.strip().splitlines()[-1])
    # then the channel layer's host is in channels-redis's Sentinel form and the cache uses the
    # Sentinel pool
    assert sentinels == [["10.0.0.1", 26379], ["fd00::2", 26380]] and master == "mymaster"
    assert layer_host["master_name"] == "mymaster" and layer_host["sentinels"] == sentinels
    assert layer_host["address"].endswith("/0")
    assert cache_options == {"pool_class": "bus.redis_clients.SentinelPool"}
