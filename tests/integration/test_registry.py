"""The worker registry on the real Redis, RabbitMQ and MariaDB: a worker process beats into it
and drops out by itself when it is killed; runners and the relay say what they handled and how
far behind they are; a clean stop leaves at once; ``manage.py workers`` and the gauges read it."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest

from bus import registry
from bus.models import DeadLetter, OutboxMessage
from bus.outbox import outbox_write
from bus.redis_hints import hint_client
from operations.registry_metrics import WorkersCollector
from tests.broker import queue_depth
from tests.busapp.consumers import TEST_HAPPENED, test_effects
from tests.support import ROOT, ManagedProcess, process_env, wait_until

BEAT = 0.3

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_beats(settings):
    """Beats a few times a second (the entry lives three of them); the registry left empty."""
    settings.WORKER_BEAT_SECONDS = BEAT
    _clear()
    yield
    _clear()


def _clear() -> None:
    client = hint_client()
    for entry in registry.entries():
        client.delete(registry._entry_key(entry.id))
    client.delete(registry._index_key())


def entry_of(role: str, pid: int | None = None) -> registry.Entry | None:
    return next((e for e in registry.entries() if e.role == role and (pid is None or e.pid == pid)), None)


def wait_for_entry(
    role: str,
    pid: int | None = None,
    *,
    until: Callable[[registry.Entry], bool] = bool,
    timeout: float = 10,
    what: str = "",
) -> registry.Entry:
    """The entry of ``role`` (and ``pid``) once it exists and ``until`` holds for it."""

    def found() -> registry.Entry | None:
        entry = entry_of(role, pid)
        return entry if entry is not None and until(entry) else None

    entry = wait_until(found, timeout=timeout, what=what or f"the registry entry of {role}")
    assert entry is not None
    return entry


def emit(key: str, count: int = 1, **fields) -> None:
    with transaction.atomic():
        for i in range(count):
            outbox_write(event=TEST_HAPPENED, payload={"key": key, "seq": i, **fields}, aggregate=f"test:{key}:{i}")


def workers_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "workers", *args],
        cwd=ROOT,
        env=process_env(WORKER_BEAT_SECONDS=str(BEAT)),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_a_worker_process_beats_and_its_entry_expires_after_it_is_killed(bus, tmp_path):
    # given: a worker process, as the Procfile runs it
    worker = ManagedProcess("consume", "audit.events", log_dir=tmp_path, WORKER_BEAT_SECONDS=str(BEAT))
    try:
        # when: it has started
        entry = wait_for_entry("audit", worker.proc.pid, timeout=60)
        # then: it says who and where it is, and keeps beating
        assert entry.queues == ["audit.events"]
        assert entry.host == socket.gethostname()
        assert entry.started <= entry.beat <= time.time() + 1
        assert entry.handled == 0 and entry.lag == 0.0
        wait_for_entry("audit", worker.proc.pid, until=lambda e: e.beat > entry.beat, timeout=5, what="a new beat")
        check = workers_command("--check", "audit", "--self")
        assert check.returncode == 0, check.stderr
        assert workers_command("--check", "billing").returncode == 1

        # when: it is killed, with no chance to clean up
        worker.kill()
        killed_at = time.monotonic()
        # then: its entry expires by itself, within three beats
        wait_until(lambda: entry_of("audit", worker.proc.pid) is None, timeout=10, what="the entry to expire")
        assert time.monotonic() - killed_at <= registry.BEATS_TO_LIVE * BEAT + 1.0
        dead = workers_command("--check", "audit")
        assert dead.returncode == 1 and "no live copy of audit" in dead.stderr
    finally:
        worker.terminate()


def test_a_runner_reports_what_it_holds_then_what_it_handled_and_a_clean_stop_leaves_at_once(relay, run_consumers):
    # given: a runner whose first message takes a while, with two more behind it
    running = run_consumers(test_effects)
    emit("slow", sleep=1.5)
    emit("quick", count=2)

    # then: while it works, its entry shows the messages it holds, and their age growing
    busy = wait_for_entry(
        "test.effects",
        until=lambda e: e.unacked.get("test.effects", 0) >= 1 and (e.lag or 0) >= 1.0,
        what="the runner to report the messages it holds, a second old",
    )
    assert busy.handled == 0
    # and once the work is done: three handled, nothing held, no lag
    idle = wait_for_entry("test.effects", until=lambda e: e.handled == 3, timeout=15, what="three handled")
    assert idle.unacked == {} and idle.lag == 0.0

    # when: it stops cleanly
    running.stop()
    # then: its entry is gone at once, not after its time to live
    assert entry_of("test.effects") is None


def test_the_relay_reports_what_it_published_and_the_age_of_the_oldest_unsent_row(relay):
    # given: the relay running
    emit("relayed", count=3)
    # then: its entry counts what it published
    entry = wait_for_entry("relay", until=lambda e: e.handled >= 3, what="the relay's entry to count 3")
    assert entry.lag is not None and entry.lag < 5


def test_the_outbox_lag_is_the_age_of_the_oldest_unsent_row(transactional_db):
    # given: no unsent row
    assert registry.outbox_lag() == 0.0
    # when: an unsent row was written 90 s ago, and a newer one since
    with transaction.atomic():
        outbox_write(event=TEST_HAPPENED, payload={"key": "old"}, aggregate="test:old")
        outbox_write(event=TEST_HAPPENED, payload={"key": "new"}, aggregate="test:new")
    oldest = OutboxMessage.objects.order_by("id").values_list("id", flat=True)[0]
    OutboxMessage.objects.filter(id=oldest).update(created_at=timezone.now() - timedelta(seconds=90))
    # then: the lag is the older one's age
    lag = registry.outbox_lag()
    assert lag is not None and 89 <= lag < 100


def test_a_beat_that_cannot_reach_redis_is_logged_and_the_work_goes_on(monkeypatch, caplog):
    # given: a heartbeat whose Redis does not answer (nothing listens on its port)
    heartbeat = registry.Heartbeat(role="test-nowhere")
    nowhere = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2)
    with monkeypatch.context() as patched:
        patched.setattr(registry, "hint_client", lambda: nowhere)
        # when: it beats
        heartbeat.beat()
    # then: nothing raised, and the failure is in the log
    assert "heartbeat of test-nowhere" in caplog.text


@pytest.mark.slow
def test_the_scheduler_beats_and_leaves_when_stopped(bus, tmp_path):
    # given: the scheduler process, its first housekeeping round far away
    scheduler = ManagedProcess(
        "scheduler", log_dir=tmp_path, WORKER_BEAT_SECONDS=str(BEAT), HOUSEKEEPING_FIRST_DELAY="3600"
    )
    try:
        entry = wait_for_entry("scheduler", scheduler.proc.pid, timeout=60)
        assert entry.queues == [] and entry.handled == 0
    finally:
        # when: it is stopped with SIGTERM
        code = scheduler.terminate()
    # then: it left the registry as it stopped
    assert code == 0, scheduler.log()
    assert entry_of("scheduler", scheduler.proc.pid) is None


def test_manage_workers_shows_the_workers_the_missing_roles_queues_outbox_and_dead_letters(relay, run_consumers, bus):
    # given: the relay and the test consumer running, a message waiting for nobody, a dead letter
    run_consumers(test_effects)
    wait_until(lambda: entry_of("relay") and entry_of("test.effects"), timeout=10, what="both entries")
    # (a runner beats before its consumer is subscribed)
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 1, timeout=10, what="the consumer subscribed")
    DeadLetter.objects.create(queue="billing.order_placed", type="order.placed", reason="boom", body="{}")

    # when: the operator asks for the JSON
    out = io.StringIO()
    call_command("workers", "--json", stdout=out)
    snapshot = json.loads(out.getvalue())

    # then: the live workers, the roles without a copy, every queue's depth, the outbox, dead letters
    assert {"relay", "test.effects"} <= {w["role"] for w in snapshot["workers"]}
    assert "billing" in snapshot["missing"] and "relay" not in snapshot["missing"]
    queues = {q["queue"]: q for q in snapshot["queues"]}
    assert queues["test.effects"]["consumers"] == 1 and queues["test.effects"]["ready"] == 0
    assert "billing.order_placed.dead" in queues and "bus.parked" in queues
    assert snapshot["outbox"]["unsent"] == 0
    assert snapshot["dead_letters"] == {"stored": {"billing.order_placed": 1}, "total": 1}
    assert snapshot["errors"] == {}

    # and the table names each role with no live copy
    table = io.StringIO()
    call_command("workers", stdout=table)
    assert "roles with no live copy:" in table.getvalue() and "billing" in table.getvalue()


def test_the_gauges_count_live_copies_per_role_and_zero_for_a_role_without_one(relay):
    # given: the relay beating, no billing worker
    wait_until(lambda: entry_of("relay"), timeout=10, what="the relay's entry")
    registry_ = CollectorRegistry()
    registry_.register(WorkersCollector())
    # when: Prometheus scrapes
    text = generate_latest(registry_).decode()
    # then
    assert 'passline_workers_alive{role="relay"} 1.0' in text
    assert 'passline_workers_alive{role="billing"} 0.0' in text
    assert 'passline_worker_beat_age_seconds{role="relay"}' in text
    assert 'passline_worker_beat_age_seconds{role="billing"}' not in text


def test_workers_check_exits_nonzero_when_redis_is_away():
    # given: a registry nobody can read
    result = subprocess.run(
        [sys.executable, "manage.py", "workers", "--check", "relay"],
        cwd=ROOT,
        env={**process_env(), "REDIS_URL": "redis://127.0.0.1:1/0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then: unhealthy, and why
    assert result.returncode == 1
    assert "registry is unreadable" in result.stderr
