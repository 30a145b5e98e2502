"""The broker goes away and comes back while the relay publishes and consumers consume.

Runs against a private RabbitMQ node (its own name, port and data directory), never the
machine's shared broker.
"""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from bus.models import OutboxMessage
from bus.outbox import outbox_write
from bus.relay import OutboxRelay
from bus.runner import WorkerRunner
from bus.topology import declare_topology
from tests.busapp.consumers import TEST_HAPPENED, test_effects
from tests.busapp.models import Effect
from tests.support import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(private_broker, settings, transactional_db):
    settings.RABBITMQ_URL = private_broker.url
    settings.RABBITMQ_HEARTBEAT = 5
    declare_topology()
    return private_broker


def test_no_confirmed_message_is_lost_across_a_broker_restart_and_everyone_recovers(broker, worker_threads):
    # (not run_relay: that one works on the session's broker)
    relay = worker_threads.start(OutboxRelay(idle_interval=0.01, max_reconnect_delay=1.0))
    consumer = worker_threads.start(WorkerRunner([test_effects]))
    written = 0
    stop_writing = threading.Event()

    def writer() -> None:
        # Orders keep coming in while the broker is down: they wait in the outbox.
        nonlocal written
        try:
            while not stop_writing.is_set() and written < 2000:
                with transaction.atomic():
                    for _ in range(10):
                        outbox_write(
                            event=TEST_HAPPENED,
                            payload={"key": "restart", "seq": written},
                            aggregate=f"agg:{written % 7}",
                        )
                        written += 1
                stop_writing.wait(0.01)
        finally:
            from django.db import connection

            connection.close()

    writing = threading.Thread(target=writer)
    writing.start()
    try:
        wait_until(lambda: Effect.objects.filter(key="restart").count() >= 100, what="traffic before the restart")
        broker.stop_app()
        during = Effect.objects.filter(key="restart").count()
        broker.start_app()
        stop_writing.set()
        writing.join(timeout=60)
        try:
            wait_until(
                lambda: Effect.objects.filter(key="restart").count() == written,
                timeout=60,
                what=f"all {written} messages consumed after the restart",
            )
        except AssertionError:
            from tests.broker import queue_depth

            raise AssertionError(
                f"written={written} consumed={Effect.objects.filter(key='restart').count()} "
                f"unsent={OutboxMessage.objects.filter(sent_at__isnull=True).count()} "
                f"queue={queue_depth(broker.url, 'test.effects')} retry={queue_depth(broker.url, 'test.effects.retry.1')} "
                f"dead={queue_depth(broker.url, 'test.effects.dead')} relay_alive={relay.thread.is_alive()} "
                f"consumer_alive={consumer.thread.is_alive()} handled={consumer.worker.handled}"
            ) from None
    finally:
        stop_writing.set()
        writing.join(timeout=60)
        relay.stop()
        consumer.stop()
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0
    seqs = list(Effect.objects.filter(key="restart").values_list("seq", flat=True))
    assert sorted(seqs) == list(range(written)), "every message once, none twice"
    assert during < written
    # and the same relay and consumer objects came back by themselves
    assert relay.worker.published >= written
