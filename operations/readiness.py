"""Readiness: whether this web process can do its work now (``/readyz``).

``/healthz`` is liveness (the process answers); readiness asks each thing a request needs:
MariaDB (``SELECT 1``), RabbitMQ (a connection as the ``monitor`` role, bus/roles.py: with a
cluster, any node that answers, the others named under ``failing_nodes``), Redis
(``PING``), the migrations of this code applied, and the relay keeping up (the oldest unsent
outbox row younger than ``READYZ_OUTBOX_MAX_AGE_SECONDS``). Each check gives up after
``READYZ_TIMEOUT_SECONDS``; the database, RabbitMQ and Redis are asked at the same time, on a few
threads of this module (the database's checks on one of them, so the process holds one more
connection, not three). The answer is reused for ``READYZ_CACHE_SECONDS``: a load balancer
polling every second costs one round of checks a second, whatever the number of requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import pika
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.migrations.executor import MigrationExecutor

from bus import roles
from bus.connection import broker_urls, connection_parameters, node_name, node_parameters
from bus.redis_hints import hint_client
from bus.registry import outbox_lag

DATABASE = "database"
MIGRATIONS = "migrations"
OUTBOX = "outbox"
RABBITMQ = "rabbitmq"
REDIS = "redis"
CHECKS = (DATABASE, RABBITMQ, REDIS, MIGRATIONS, OUTBOX)


@dataclass
class Check:
    ok: bool
    ms: float = 0.0
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": self.ok, "ms": self.ms, **self.detail}
        if self.error:
            answer["error"] = self.error
        return answer


@dataclass
class Readiness:
    checks: dict[str, Check]
    at: float

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name in CHECKS if name in self.checks and not self.checks[name].ok]

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "status": "ready" if self.ready else "unavailable",
            "checks": {name: check.as_json() for name, check in self.checks.items()},
        }
        if not self.ready:
            reasons = "; ".join(f"{name}: {self.checks[name].error}" for name in self.failing)
            answer["failing"] = self.failing
            answer["error"] = {"code": "not_ready", "message": reasons}
        return answer


def _timed(run: Callable[[], dict[str, Any] | None]) -> Check:
    started = time.monotonic()
    try:
        detail = run() or {}
    except Exception as error:  # noqa: BLE001 - a failed check is an answer, never a 500
        return Check(False, _ms(started), _reason(error))
    return Check(True, _ms(started), detail=detail)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _reason(error: BaseException) -> str:
    text = str(error).strip() or repr(error)
    return f"{type(error).__name__}: {text}"[:300]


# --- the checks ------------------------------------------------------------------------------------

_migrations_applied = False  # once they are, they stay so for this process's code


def _unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def _database_checks() -> dict[str, Check]:
    """The database, then (only if it answers) the migrations and the outbox's age."""
    close_old_connections()
    try:
        checks = {DATABASE: _timed(_select_one)}
        if not checks[DATABASE].ok:
            connection.close()
            skipped = Check(False, error="the database does not answer")
            return {**checks, MIGRATIONS: skipped, OUTBOX: skipped}

        def migrations() -> None:
            global _migrations_applied
            if _migrations_applied:
                return
            unapplied = _unapplied_migrations()
            if unapplied:
                shown = ", ".join(unapplied[:5]) + (" …" if len(unapplied) > 5 else "")
                raise RuntimeError(f"{len(unapplied)} unapplied: {shown}")
            _migrations_applied = True

        checks[MIGRATIONS] = _timed(migrations)
        checks[OUTBOX] = _timed(_outbox)
        return checks
    finally:
        close_old_connections()


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _outbox() -> dict[str, Any]:
    age = outbox_lag()
    if age is None:
        raise RuntimeError("cannot read the outbox")
    limit = settings.READYZ_OUTBOX_MAX_AGE_SECONDS
    if age > limit:
        raise RuntimeError(f"the oldest unsent message is {age:.0f} s old (more than {limit:g} s): is the relay up?")
    return {"oldest_unsent_seconds": round(age, 3)}


def broker_parameters(timeout: float, *, url: str | None = None) -> list[pika.URLParameters]:
    """Connection parameters of the monitor role (the broker URLs' user with roles off): of
    every node in turn (bus/connection.py), or of the one node ``url``."""
    nodes = (
        [node_parameters(url, roles.MONITOR, name="readiness")]
        if url
        else connection_parameters(roles.MONITOR, name="readiness")
    )
    for params in nodes:
        params.socket_timeout = timeout
        params.stack_timeout = timeout
        params.blocked_connection_timeout = timeout
    return nodes


def _rabbitmq() -> dict[str, Any] | None:
    """One node answering is enough (every client moves to one that does); with a cluster,
    each node is asked at once and the ones that do not answer are named."""
    timeout = settings.READYZ_TIMEOUT_SECONDS
    urls = broker_urls()
    if len(urls) == 1:
        pika.BlockingConnection(broker_parameters(timeout)).close()
        return None
    asked = {node_name(url): _node_pool.submit(_node_answers, url, timeout) for url in urls}
    errors: dict[str, str] = {}
    for name, future in asked.items():
        try:
            future.result(timeout=timeout + 0.5)
        except FutureTimeout:
            errors[name] = f"no answer within {timeout:g} s"
        except Exception as error:  # noqa: BLE001 - a node that fails is named, not raised
            errors[name] = _reason(error)
    if len(errors) == len(asked):
        # The names first: the reasons are long, and a check's error is cut at 300 characters.
        reasons = "; ".join(f"{name}: {why}" for name, why in errors.items())
        raise RuntimeError(f"no RabbitMQ node answers ({', '.join(errors)}): {reasons}")
    detail: dict[str, Any] = {"nodes": {name: errors.get(name, "ok") for name in asked}}
    if errors:
        detail["failing_nodes"] = sorted(errors)
    return detail


def _node_answers(url: str, timeout: float) -> None:
    pika.BlockingConnection(broker_parameters(timeout, url=url)).close()


def _redis() -> None:
    if not hint_client().ping():
        raise RuntimeError("no PONG")


# --- one round, shared -----------------------------------------------------------------------------

_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="readiness")
# The nodes of a RabbitMQ cluster, asked at the same time (from the broker's check).
_node_pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="readiness-node")
_lock = threading.Lock()
_last: Readiness | None = None


def _wait(future: Future[Any], names: tuple[str, ...], deadline: float) -> dict[str, Check]:
    try:
        result = future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        timeout = settings.READYZ_TIMEOUT_SECONDS
        return {name: Check(False, timeout * 1000, f"no answer within {timeout:g} s") for name in names}
    return result if isinstance(result, dict) else {names[0]: result}


def check_all() -> Readiness:
    """Run every check now."""
    # The database's three checks share a thread; each may take the whole timeout.
    deadline = time.monotonic() + settings.READYZ_TIMEOUT_SECONDS * 3 + 0.5
    database = _pool.submit(_database_checks)
    broker = _pool.submit(_timed, _rabbitmq)
    cache = _pool.submit(_timed, _redis)
    checks = {
        **_wait(database, (DATABASE, MIGRATIONS, OUTBOX), deadline),
        RABBITMQ: _wait(broker, (RABBITMQ,), deadline)[RABBITMQ],
        REDIS: _wait(cache, (REDIS,), deadline)[REDIS],
    }
    return Readiness({name: checks[name] for name in CHECKS}, at=time.monotonic())


def readiness() -> Readiness:
    """The last round if it is younger than READYZ_CACHE_SECONDS, else a new one (one at a time:
    requests that arrive meanwhile wait for it and share it)."""
    global _last
    with _lock:
        if _last is None or time.monotonic() - _last.at >= settings.READYZ_CACHE_SECONDS:
            _last = check_all()
        return _last


def forget() -> None:
    """Drop the cached round and what is known of the migrations (tests)."""
    global _last, _migrations_applied
    with _lock:
        _last = None
        _migrations_applied = False
