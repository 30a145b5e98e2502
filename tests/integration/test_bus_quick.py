"""Quick consumers (bus/handlers.py ``quick``): their handlers run on the connection's own
thread, without the hand-off to the handler thread; the time-out still ends an overrunning
batch, and a batch that blocks the connection past two heartbeats costs the connection, never
a second effect."""

from __future__ import annotations

from django.db import transaction

from bus.outbox import outbox_write
from bus.runner import EXIT_HANDLER_TIMEOUT
from tests.busapp.consumers import TEST_QUICK, test_quick
from tests.busapp.models import Effect
from tests.support import ManagedProcess, wait_until


def emit(key: str, count: int = 1, **fields: object) -> None:
    with transaction.atomic():
        for seq in range(count):
            outbox_write(event=TEST_QUICK, payload={"key": key, "seq": seq, **fields}, aggregate=f"quick:{key}:{seq}")


def ran_on(key: str) -> list[str]:
    return list(Effect.objects.filter(consumer="test.quick", key=key).values_list("aggregate", flat=True))


def test_a_quick_consumer_runs_its_handlers_on_the_runners_own_thread(bus, relay, run_consumers):
    running = run_consumers(test_quick)
    emit("inline", 20)
    wait_until(lambda: len(ran_on("inline")) == 20, what="20 effects")
    # The thread that runs the runner (the test's InThread), not the handler thread.
    assert set(ran_on("inline")) == {running.thread.name}
    assert not any(name.startswith("handler") for name in ran_on("inline"))


def test_a_quick_batch_that_overruns_its_time_out_ends_the_process_and_has_no_effect(bus, relay, tmp_path):
    worker = ManagedProcess("consume", "test.quick", log_dir=tmp_path, RABBITMQ_URL=bus)
    try:
        emit("stuck", sleep=10)  # the consumer's time-out is 5 s
        assert worker.proc.wait(timeout=60) == EXIT_HANDLER_TIMEOUT, worker.log()
        assert "overran its 5 s timeout" in worker.log()
    finally:
        worker.terminate()
    assert ran_on("stuck") == []


def test_a_quick_handler_blocking_past_two_heartbeats_loses_the_connection_not_the_effect(
    bus, relay, run_consumers, settings
):
    settings.RABBITMQ_HEARTBEAT = 1
    running = run_consumers(test_quick)
    emit("slow", sleep=3.5)  # under the 5 s time-out, over two 1 s heartbeats
    wait_until(lambda: len(ran_on("slow")) == 1, timeout=30, what="the slow message's effect")
    emit("after-slow")
    wait_until(lambda: len(ran_on("after-slow")) == 1, timeout=30, what="the next message")
    running.stop()
    # Whether or not the broker dropped the connection meanwhile (and handed the message out
    # again), the inbox kept it to one effect.
    assert len(ran_on("slow")) == 1
