"""Housekeeping: what grows with every order and must be pruned, on a schedule.

Each job deletes rows older than its retention in short chunks (short transactions, short
locks) and says how many it deleted. ``manage.py scheduler`` runs them at their intervals;
``manage.py housekeeping`` runs them once, now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import models
from django.utils import timezone
from prometheus_client import Counter, Gauge

from audit.models import AuditRecord
from bus.services import bus_prune
from notifications.models import Notification

logger = logging.getLogger(__name__)

DELETED = Counter("passline_housekeeping_deleted_rows", "Rows housekeeping deleted", ["job", "table"])
FAILURES = Counter("passline_housekeeping_failures", "Housekeeping runs that failed", ["job"])
LAST_SUCCESS = Gauge(
    "passline_housekeeping_last_success_timestamp_seconds",
    "When each housekeeping job last ran to its end",
    ["job"],
    multiprocess_mode="max",
)


def delete_in_chunks(model: type[models.Model], condition: models.Q, chunk: int = 5000) -> int:
    """Delete the rows matching ``condition`` ``chunk`` at a time, oldest first."""
    deleted = 0
    while True:
        ids = list(model._default_manager.filter(condition).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += model._default_manager.filter(pk__in=ids).delete()[0]


def prune_bus() -> dict[str, int]:
    """Sent outbox rows and processed-message records (the audit trail keeps every envelope)."""
    return bus_prune(older_than=timedelta(days=settings.BUS_RETENTION_DAYS))


def prune_audit() -> dict[str, int]:
    cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    return {"audit_record": delete_in_chunks(AuditRecord, models.Q(occurred_at__lt=cutoff))}


def prune_notifications() -> dict[str, int]:
    """The delivery log of notifications: only those done with (sent, failed, suppressed)."""
    cutoff = timezone.now() - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    done = ~models.Q(status__in=[Notification.Status.PENDING]) & models.Q(created_at__lt=cutoff)
    return {"notification": delete_in_chunks(Notification, done)}


def prune_sessions() -> dict[str, int]:
    """Expired sessions (Django's clearsessions, counted)."""
    return {"session": delete_in_chunks(Session, models.Q(expire_date__lt=timezone.now()))}


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], dict[str, int]]
    every: timedelta


JOBS = [
    Job("prune_bus", prune_bus, timedelta(hours=1)),
    Job("prune_audit", prune_audit, timedelta(hours=6)),
    Job("prune_notifications", prune_notifications, timedelta(hours=6)),
    Job("prune_sessions", prune_sessions, timedelta(hours=1)),
]


def run_job(job: Job) -> dict[str, int] | None:
    """Run one job, count what it deleted; a failure is logged and counted, never raised (the
    scheduler goes on, and tries again at the next interval)."""
    started = time.monotonic()
    try:
        counts = job.run()
    except Exception:
        FAILURES.labels(job.name).inc()
        logger.exception("housekeeping job failed", extra={"job": job.name})
        return None
    for table, count in counts.items():
        DELETED.labels(job.name, table).inc(count)
    LAST_SUCCESS.labels(job.name).set(time.time())
    logger.info(
        "housekeeping job done",
        extra={"job": job.name, "deleted": counts, "seconds": round(time.monotonic() - started, 3)},
    )
    return counts
