"""The web process under ASGI: requests' sync code on a few long-lived threads that keep their
database connections, however many requests arrive together."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, connections

from passline.asgi import application
from tests.private_redis import private_redis  # noqa: F401 - a fixture
from tests.support import asgi_get

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


async def _get(path: str) -> int:
    """One HTTP request through the whole ASGI application, as daphne hands it over."""
    return (await asgi_get(application, path))[0]


def _thread_connection_ids() -> list[int | None]:
    """The MariaDB connection each web thread holds (None: none open)."""

    def held() -> int | None:
        return connection.connection.thread_id() if connection.connection is not None else None

    return [executor.submit(held).result() for executor in application.application_mapping["http"].executors]


def _web_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("web-db-")}


def test_concurrent_requests_share_a_few_threads_that_keep_their_connections():
    # given: the web application as daphne runs it (healthz reads the database)
    threads = settings.WEB_DB_THREADS

    async def wave() -> list[int]:
        return await asyncio.gather(*(_get("/healthz") for _ in range(40)))

    try:
        # when: three waves of 40 concurrent requests
        first = async_to_sync(wave)()
        held_after_first = _thread_connection_ids()
        later = async_to_sync(wave)() + async_to_sync(wave)()

        # then: every request answered, on at most WEB_DB_THREADS threads, each of which opened
        # one connection and kept it for the later waves (Django's own handler runs each
        # request on a new thread: a connection per request)
        assert first + later == [200] * 120
        assert 1 <= len(_web_threads()) <= threads
        assert any(held_after_first)
        assert _thread_connection_ids() == held_after_first
    finally:
        for executor in application.application_mapping["http"].executors:
            executor.submit(connections.close_all).result()


def test_requests_share_one_redis_connection_pool(private_redis):
    # given: the cache (rate limits, cached sessions, breakers) on a Redis of this test's own,
    # so that every connection it receives is ours
    from django.core.cache import caches

    from passline.cache import SharedRedisCache

    assert isinstance(caches["default"], SharedRedisCache)

    def connections_received() -> int:
        with private_redis.client() as admin:
            return int(admin.info("stats")["total_connections_received"])

    async def wave() -> list[int]:
        # the restaurant list is rate limited: each request counts in Redis through the cache
        return await asyncio.gather(*(_get("/api/v1/restaurants") for _ in range(20)))

    before = connections_received()
    # when: three waves of 20 concurrent requests, each in an async context of its own
    statuses = async_to_sync(wave)() + async_to_sync(wave)() + async_to_sync(wave)()

    # then: the requests shared one pool, which opened a connection per thread using it at
    # once, not one per request (Django's own backend builds a pool per context)
    assert statuses == [200] * 60
    opened = connections_received() - before - 1
    assert 1 <= opened <= settings.WEB_DB_THREADS + 2, opened


def test_every_process_keeps_its_database_connections():
    # the web process's threads are bounded (above), so it keeps its connections like a worker
    clean = {k: v for k, v in os.environ.items() if k != "DB_CONN_MAX_AGE"}
    code = (
        "import passline.asgi\nfrom django.conf import settings\nprint(settings.DATABASES['default']['CONN_MAX_AGE'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "passline.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "60"


def test_a_request_makes_one_hop_to_a_thread_for_the_middleware_chain_and_the_view():
    # given: every hand-over to the web threads counted
    executors = application.application_mapping["http"].executors
    handed: list[object] = []

    def counting(submit):  # type: ignore[no-untyped-def]
        def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            handed.append(fn)
            return submit(fn, *args, **kwargs)

        return counted

    for executor in executors:
        executor.submit = counting(executor.submit)
    try:
        # when: a page that passes every middleware (session, CSRF, auth, messages) is asked for
        status = async_to_sync(_get)("/login/")
    finally:
        for executor in executors:
            del executor.submit
            executor.submit(connections.close_all).result()

    # then: the chain and the view ran in one hop; the others are Django's request_started and
    # the response's close (with request_finished). Django's async chain makes one per
    # middleware hook and one for the view: 17 for this page.
    assert status == 200
    assert len(handed) <= 3, handed
