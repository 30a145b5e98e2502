"""SIGTERM stops every process cleanly: a worker finishes and acks the batch in hand and gives
back what it had prefetched, the relay waits for its confirms, the scheduler gives its job lock
back, and nothing is lost or done twice. Real processes (``manage.py consume`` /
``relay_outbox``), the real broker, MariaDB and Redis."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import redis
from django.conf import settings
from django.db import transaction

from bus import registry
from bus.models import OutboxMessage
from bus.outbox import outbox_write
from bus.shutdown import EXIT_CUT_SHORT
from operations.housekeeping import Job
from operations.management.commands.scheduler import _locked, _release_held
from tests.broker import queue_depth
from tests.busapp.consumers import TEST_HAPPENED, test_effects
from tests.busapp.models import Effect
from tests.support import ManagedProcess, wait_until


def emit(key: str, count: int = 1, **fields: object) -> None:
    with transaction.atomic():
        for seq in range(count):
            outbox_write(event=TEST_HAPPENED, payload={"key": key, "seq": seq, **fields}, aggregate=f"{key}:{seq}")


def effects_by_message(*keys: str) -> Counter[str]:
    return Counter(Effect.objects.filter(key__in=keys).values_list("message_id", flat=True))


def test_a_worker_finishes_its_batch_gives_back_the_prefetched_rest_and_exits_0(bus, relay, tmp_path):
    # given: a worker busy with a slow message while twenty more wait in its prefetch
    worker = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus, LOG_LEVEL="DEBUG")
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 1, what="the consumer")
    emit("slow", sleep=3)
    wait_until(lambda: "handling test.happened" in worker.log(), what="the slow message in hand")
    emit("waiting", 20)
    wait_until(lambda: OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0, what="all relayed")
    wait_until(lambda: queue_depth(bus, "test.effects")[0] == 0, what="the twenty prefetched")

    # when: it gets SIGTERM mid-batch
    code = worker.terminate(timeout=30)

    # then: the batch in hand was finished and acked, the rest went back to the queue at once
    assert code == 0, worker.log()
    assert effects_by_message("slow") and set(effects_by_message("slow").values()) == {1}
    assert "gave back its prefetched deliveries" in worker.log()
    assert queue_depth(bus, "test.effects") == (20, 0)
    assert sum(effects_by_message("waiting").values()) == 0

    # and: the next worker handles each of them once
    restarted = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus)
    try:
        wait_until(lambda: len(effects_by_message("waiting")) == 20, timeout=30, what="the rest handled")
    finally:
        assert restarted.terminate() == 0, restarted.log()
    assert set(effects_by_message("slow", "waiting").values()) == {1}


def test_a_second_sigterm_exits_at_once_and_the_message_is_handled_once_after(bus, relay, tmp_path):
    worker = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus, LOG_LEVEL="DEBUG")
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 1, what="the consumer")
    emit("stuck", sleep=30)
    wait_until(lambda: "handling test.happened" in worker.log(), what="the message in hand")

    # when: the operator insists
    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping: finishing the work in hand" in worker.log(), what="the first signal taken")
    code = worker.terminate(timeout=10)

    # then: it exited at once, without the effect; the message is still there for the next worker
    assert code == EXIT_CUT_SHORT, worker.log()
    assert "second SIGTERM" in worker.log()
    assert not effects_by_message("stuck")
    wait_until(lambda: queue_depth(bus, "test.effects")[0] == 1, what="the message back in its queue")


def test_the_relay_stops_on_sigterm_mid_flow_and_nothing_is_lost(bus, run_consumers, tmp_path):
    # given: a relay publishing a steady flow, and the consumer taking it
    run_consumers(test_effects)
    relay = ManagedProcess("relay_outbox", log_dir=tmp_path, RABBITMQ_URL=bus)
    emit("flow-0", 50)
    wait_until(lambda: len(effects_by_message("flow-0")) > 0, timeout=30, what="the relay at work")
    for wave in range(1, 6):
        emit(f"flow-{wave}", 50)

    # when: it gets SIGTERM while rows are still going out
    code = relay.terminate(timeout=30)

    # then: it exited cleanly; what it did not mark sent goes out with the next relay, once
    assert code == 0, relay.log()
    assert "relay stopped" in relay.log()
    keys = [f"flow-{wave}" for wave in range(6)]
    restarted = ManagedProcess("relay_outbox", log_dir=tmp_path, RABBITMQ_URL=bus)
    try:
        # (the first relay may have sent everything: the next one is stopped only once it runs,
        # its stop signals taken, not while Django is still starting)
        wait_until(
            lambda: any(e.role == "relay" and e.pid == restarted.proc.pid for e in registry.entries()),
            timeout=60,
            what="the next relay running",
        )
        wait_until(lambda: len(effects_by_message(*keys)) == 300, timeout=60, what="every message handled")
    finally:
        assert restarted.terminate() == 0, restarted.log()
    assert set(effects_by_message(*keys).values()) == {1}
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def test_the_scheduler_gives_back_its_job_lock_when_cut_short_and_never_another_schedulers(db):
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{settings.REDIS_PREFIX}:housekeeping:test_lock"
    seen: dict[str, int] = {}

    def cut_short_mid_job() -> dict[str, int]:
        seen["held"] = client.exists(key)
        _release_held()  # what a stop cut short does before it exits
        seen["after"] = client.exists(key)
        return {}

    _locked(client, Job("test_lock", cut_short_mid_job, timedelta(minutes=1)))
    assert seen == {"held": 1, "after": 0}

    def overran_and_another_took_over() -> dict[str, int]:
        client.delete(key)  # its lock expired…
        client.set(key, "another scheduler's token", ex=60)  # …and another scheduler took it
        return {}

    try:
        _locked(client, Job("test_lock", overran_and_another_took_over, timedelta(minutes=1)))
        assert client.get(key) == b"another scheduler's token"
    finally:
        client.delete(key)
