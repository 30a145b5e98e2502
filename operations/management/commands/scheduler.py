"""The scheduler process: housekeeping jobs at their intervals (operations/housekeeping.py).

APScheduler runs the jobs, each at most one at a time, a missed run coalesced into one. Two
scheduler processes (one per machine, for availability) do not both run a job: each run takes a
lock in Redis for the job first. SIGTERM lets the running job finish, releases its lock and
stops; a second SIGTERM, or ``STOP_GRACE_SECONDS``, releases the locks it holds and exits at once
(bus/shutdown.py), so the other scheduler need not wait for the lock to expire.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import redis
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from bus import redis_clients, shutdown
from bus.registry import SCHEDULER, Heartbeat
from operations.housekeeping import JOBS, Job, run_job

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the housekeeping jobs at their intervals until stopped (the Procfile's scheduler)."

    def handle(self, *args: Any, **options: Any) -> None:
        client = redis_clients.client()
        scheduler = BlockingScheduler(timezone=timezone.get_current_timezone())
        first = datetime.now(tz=timezone.get_current_timezone()) + timedelta(seconds=settings.HOUSEKEEPING_FIRST_DELAY)
        for job in JOBS:
            scheduler.add_job(
                _locked,
                "interval",
                seconds=job.every.total_seconds(),
                args=[client, job],
                id=job.name,
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(job.every.total_seconds()),
            )

        # The running job finishes (shutdown waits for it); cut short, its lock is given back.
        shutdown.on_stop_signals(lambda: scheduler.shutdown(wait=True), name="scheduler", last_words=_release_held)
        # The worker registry (bus/registry.py): "handled" counts the job runs.
        runs = [0]

        def ran(event: JobExecutionEvent) -> None:
            runs[0] += 1

        scheduler.add_listener(ran, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        heartbeat = Heartbeat(role=SCHEDULER, status=lambda: {"handled": runs[0]}).start()
        logger.info("scheduler started", extra={"jobs": [job.name for job in JOBS]})
        try:
            scheduler.start()
        finally:
            heartbeat.stop()


# The job locks this process holds, given back even when a stop is cut short.
_held: set[Lock] = set()
_held_guard = threading.Lock()


def _release(lock: Lock) -> None:
    with _held_guard:
        _held.discard(lock)
    try:
        lock.release()
    except LockError:
        # It expired (the job overran its interval) and may be another scheduler's by now:
        # the lock's token keeps this from releasing theirs.
        logger.warning("housekeeping lock had expired before the job ended", extra={"lock": lock.name})
    except RedisError as error:
        logger.warning("housekeeping lock not released, Redis is away (it expires): %r", error)


def _release_held() -> None:
    with _held_guard:
        held = list(_held)
    for lock in held:
        _release(lock)


def _locked(client: redis.Redis, job: Job) -> None:
    # Held for the job's interval at most: a scheduler killed mid-run frees it by then. A lock
    # with a token of its own: releasing it never frees another scheduler's.
    lock = client.lock(
        f"{settings.REDIS_PREFIX}:housekeeping:{job.name}", timeout=max(60, int(job.every.total_seconds()))
    )
    if not lock.acquire(blocking=False):
        logger.info("housekeeping job already running elsewhere", extra={"job": job.name})
        return
    with _held_guard:
        _held.add(lock)
    try:
        close_old_connections()
        run_job(job)
    finally:
        close_old_connections()
        _release(lock)
