"""The scheduler process: housekeeping jobs at their intervals (operations/housekeeping.py).

APScheduler runs the jobs, each at most one at a time, a missed run coalesced into one. Two
scheduler processes (one per machine, for availability) do not both run a job: each run takes a
lock in Redis for the job first. SIGTERM lets the running job finish, then stops.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import redis
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from bus import redis_clients
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

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("scheduler stopping")
            scheduler.shutdown(wait=True)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
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


def _locked(client: redis.Redis, job: Job) -> None:
    key = f"{settings.REDIS_PREFIX}:housekeeping:{job.name}"
    # Held for the job's interval at most: a scheduler killed mid-run frees it by then.
    if not client.set(key, "1", nx=True, ex=max(60, int(job.every.total_seconds()))):
        logger.info("housekeeping job already running elsewhere", extra={"job": job.name})
        return
    try:
        close_old_connections()
        run_job(job)
    finally:
        close_old_connections()
        client.delete(key)
