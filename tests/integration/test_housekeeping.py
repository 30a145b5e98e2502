"""Housekeeping prunes what grows with every order, and only what is past its retention: the
scheduler process does it by itself, one copy at a time, and counts what it deleted."""

from __future__ import annotations

import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditRecord
from bus.models import OutboxMessage
from notifications.models import Notification
from tests.factories import UserFactory
from tests.support import ManagedProcess, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _audit(age: timedelta) -> AuditRecord:
    return AuditRecord.objects.create(
        message_id=uuid.uuid4().hex,
        type="order.placed",
        version=1,
        exchange="passline.events",
        routing_key="order.placed",
        correlation_id="c",
        occurred_at=timezone.now() - age,
        payload={},
    )


def _outbox(age: timedelta, sent: bool) -> OutboxMessage:
    when = timezone.now() - age
    return OutboxMessage.objects.create(
        message_id=uuid.uuid4().hex,
        type="order.placed",
        exchange="passline.events",
        routing_key="order.placed",
        aggregate="order:1",
        correlation_id="c",
        body="{}",
        created_at=when,
        sent_at=when if sent else None,
    )


def _notification(age: timedelta, status: str) -> Notification:
    note = Notification.objects.create(
        key=uuid.uuid4().hex,
        customer=UserFactory.create(),
        message="welcome",
        channel=Notification.Channel.EMAIL,
        recipient="someone@example.com",
        body="Hello",
        status=status,
    )
    Notification.objects.filter(pk=note.pk).update(created_at=timezone.now() - age)
    return note


def _session(expired: bool) -> Session:
    return Session.objects.create(
        session_key=uuid.uuid4().hex,
        session_data="x",
        expire_date=timezone.now() + timedelta(days=-1 if expired else 1),
    )


@pytest.fixture
def old_and_new():
    days = timedelta(days=1)
    return {
        "gone": [
            _audit(days * (settings.AUDIT_RETENTION_DAYS + 1)),
            _outbox(days * (settings.BUS_RETENTION_DAYS + 1), sent=True),
            _notification(days * (settings.NOTIFICATION_RETENTION_DAYS + 1), Notification.Status.SENT),
            _session(expired=True),
        ],
        "kept": [
            _audit(days),
            _outbox(days, sent=True),
            # the relay still owes an unsent row, whatever its age
            _outbox(days * (settings.BUS_RETENTION_DAYS + 1), sent=False),
            _notification(days, Notification.Status.SENT),
            # still to be attempted, whatever its age
            _notification(days * (settings.NOTIFICATION_RETENTION_DAYS + 1), Notification.Status.PENDING),
            _session(expired=False),
        ],
    }


def _exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


def _deleted(job: str, table: str) -> float:
    return REGISTRY.get_sample_value("passline_housekeeping_deleted_rows_total", {"job": job, "table": table}) or 0.0


def test_housekeeping_deletes_only_what_is_past_its_retention_and_counts_it(old_and_new) -> None:
    before = _deleted("prune_audit", "audit_record")

    call_command("housekeeping")

    assert not any(_exists(row) for row in old_and_new["gone"])
    assert all(_exists(row) for row in old_and_new["kept"])
    assert _deleted("prune_audit", "audit_record") == before + 1


def test_an_unknown_job_is_refused() -> None:
    with pytest.raises(Exception, match="No such job: prune_everything"):
        call_command("housekeeping", "prune_everything")


def test_the_scheduler_prunes_by_itself_and_stops_on_sigterm(old_and_new, tmp_path: Path) -> None:
    scheduler = ManagedProcess("scheduler", log_dir=tmp_path, HOUSEKEEPING_FIRST_DELAY="0")
    try:
        wait_until(lambda: not any(_exists(row) for row in old_and_new["gone"]), timeout=30, what="pruned")
        assert all(_exists(row) for row in old_and_new["kept"])
    finally:
        code = scheduler.terminate(timeout=30)
    assert code in (0, -signal.SIGTERM), scheduler.log()
    assert "scheduler stopping" in scheduler.log()


def test_a_job_another_scheduler_is_running_is_skipped(old_and_new, tmp_path: Path) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    lock = f"{settings.REDIS_PREFIX}:housekeeping:prune_audit"
    client.set(lock, "1", ex=120)
    try:
        scheduler = ManagedProcess("scheduler", log_dir=tmp_path, HOUSEKEEPING_FIRST_DELAY="0")
        try:
            # the other jobs run; the audit job is held by "another scheduler"
            wait_until(lambda: not _exists(old_and_new["gone"][1]), timeout=30, what="bus pruned")
            wait_until(lambda: "already running elsewhere" in scheduler.log(), timeout=10, what="skip logged")
            assert _exists(old_and_new["gone"][0])
        finally:
            scheduler.terminate(timeout=30)
    finally:
        client.delete(lock)
