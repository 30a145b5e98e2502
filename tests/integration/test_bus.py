"""The RabbitMQ backbone on the real broker and MariaDB: relay, consumers, retries, dead letters, RPC."""

from __future__ import annotations

import json
import time

import pika
import pytest
from django.db import transaction

from bus.correlation import correlation_context
from bus.deadletters import dead_letter_collector
from bus.envelope import Envelope
from bus.handlers import registered
from bus.models import DeadLetter, OutboxMessage, ProcessedMessage
from bus.outbox import outbox_write
from bus.relay import OutboxRelay
from bus.services import dead_letter_replay
from tests.broker import queue_depth
from tests.busapp.consumers import TEST_HAPPENED, test_effects, test_order_placed
from tests.busapp.models import Effect
from tests.support import InThread, ManagedProcess, wait_until


def emit(key: str, count: int = 1, *, aggregate: str = "", **fields) -> list[Envelope]:
    """Write ``count`` test events to the outbox in one committed transaction."""
    with transaction.atomic():
        return [
            outbox_write(
                event=TEST_HAPPENED,
                payload={"key": key, "seq": i, "aggregate": aggregate, **fields},
                aggregate=aggregate or f"test:{key}:{i}",
            )
            for i in range(count)
        ]


def publish_raw(url: str, envelope_body: bytes, *, message_id: str, routing_key: str = "test.happened") -> None:
    """Put a message on the broker directly, bypassing the outbox (duplicates, poison)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "customer",
            routing_key,
            envelope_body,
            pika.BasicProperties(message_id=message_id, delivery_mode=2, type="test.happened"),
        )
    finally:
        connection.close()


def effects(key: str) -> int:
    return Effect.objects.filter(key=key).count()


def unsent() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()


@pytest.fixture
def consumer(run_consumers):
    return run_consumers(test_effects).worker


@pytest.fixture
def collector(run_consumers):
    return run_consumers(dead_letter_collector).worker


# --- outbox and relay ---------------------------------------------------------------------------


def test_committed_events_are_published_consumed_once_and_carry_the_correlation_id(relay, consumer):
    with correlation_context("req-correlated-1"):
        emit("flow", 50)
    wait_until(lambda: effects("flow") == 50, what="50 effects")
    assert unsent() == 0
    assert set(Effect.objects.values_list("correlation_id", flat=True)) == {"req-correlated-1"}
    assert ProcessedMessage.objects.filter(consumer="test.effects").count() == 50


def test_a_rolled_back_transaction_publishes_nothing(bus, relay, consumer):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_write(event=TEST_HAPPENED, payload={"key": "rolled-back"}, aggregate="x")
        raise RuntimeError("the state change failed")
    emit("after-rollback")  # a marker that does go out, to know the pipe has flowed
    wait_until(lambda: effects("after-rollback") == 1)
    assert effects("rolled-back") == 0


def test_an_aggregates_messages_arrive_in_the_order_they_were_written(bus, consumer, run_relay):
    with transaction.atomic():
        for seq in range(30):
            outbox_write(
                event=TEST_HAPPENED, payload={"key": "ordered", "seq": seq, "aggregate": "order:1"}, aggregate="order:1"
            )
    # two relay copies compete for the rows
    relays = [run_relay(batch_size=7, idle_interval=0.01) for _ in range(2)]
    wait_until(lambda: effects("ordered") == 30)
    for running in relays:
        running.stop()
    assert list(Effect.objects.filter(key="ordered").values_list("seq", flat=True)) == list(range(30))
    assert sum(r.worker.published for r in relays) == 30


def test_a_crash_before_publishing_leaves_rows_for_the_next_relay(bus, consumer, run_relay):
    # rows committed while no relay runs: the "crash between commit and publish"
    emit("late", 5)
    assert unsent() == 5
    running = run_relay(idle_interval=0.01)
    wait_until(lambda: effects("late") == 5)
    running.stop()
    assert unsent() == 0


class CrashBeforeMarkingSent(OutboxRelay):
    """Publishes and gets confirms, then dies before it can mark the rows sent."""

    def _finish_confirmed(self) -> None:
        if self._in_flight and not self._in_flight[0].pending:  # a batch is fully confirmed
            self._abandon_in_flight()  # as a crash would: the transaction never commits
            self._stopping.set()
            self._close()


def test_a_crash_between_publish_and_mark_sent_republishes_and_is_consumed_once(bus, consumer, run_relay):
    emit("twice", 10)
    crashed = InThread(CrashBeforeMarkingSent(idle_interval=0.01))
    crashed.thread.join(timeout=30)
    assert not crashed.thread.is_alive()
    assert unsent() == 10  # published, but not marked
    wait_until(lambda: queue_depth(bus, "test.effects")[0] + effects("twice") >= 10, what="the first copies")
    running = run_relay(idle_interval=0.01)
    wait_until(lambda: unsent() == 0)
    wait_until(lambda: effects("twice") == 10)
    # both copies of each message have reached the consumer; still one effect each
    wait_until(lambda: queue_depth(bus, "test.effects")[0] == 0)
    running.stop()
    assert effects("twice") == 10


def test_an_unroutable_message_is_kept_and_reported(bus, relay, caplog):
    with transaction.atomic():
        row_envelope = outbox_write(event=TEST_HAPPENED, payload={"key": "nowhere"}, aggregate="x")
    OutboxMessage.objects.filter(message_id=row_envelope.message_id).update(
        exchange="dead-letter", routing_key="no.such.queue"
    )
    row = wait_until(lambda: OutboxMessage.objects.filter(message_id=row_envelope.message_id, attempts__gte=1).first())
    assert row.sent_at is None
    assert "unroutable" in row.last_error
    assert any("could not deliver" in r.getMessage() for r in caplog.records)


# --- consumers ------------------------------------------------------------------------------------


def test_a_duplicate_delivery_has_one_effect_even_on_two_consumer_copies_at_once(bus, relay, run_consumers):
    envelope = Envelope(
        type="test.happened", version=1, payload={"key": "dup", "sleep": 0.3}, correlation_id="c-dup-01"
    )
    second, first = run_consumers(test_effects), run_consumers(test_effects)
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 2, what="two consumers")
    for _ in range(2):
        publish_raw(bus, envelope.to_json(), message_id=envelope.message_id)
    wait_until(lambda: effects("dup") >= 1)
    wait_until(lambda: first.worker.handled + second.worker.handled == 2, what="both copies handled")
    first.stop()
    second.stop()
    assert effects("dup") == 1


def test_a_failing_handler_is_retried_with_back_off_then_succeeds(bus, relay, consumer):
    emit("flaky", fail_times=2)
    wait_until(lambda: effects("flaky") == 1, timeout=30)
    assert not DeadLetter.objects.exists()


def test_a_poison_message_is_dead_lettered_and_the_messages_behind_it_keep_flowing(bus, relay, consumer, collector):
    publish_raw(bus, b"{not json", message_id="poison-1")
    emit("always-fails", fail_times=-1)
    emit("behind", 20)
    wait_until(lambda: effects("behind") == 20, timeout=30)
    letters = wait_until(lambda: DeadLetter.objects.count() == 2 and list(DeadLetter.objects.order_by("attempts")))
    assert [(d.queue, d.attempts) for d in letters] == [("test.effects", 1), ("test.effects", 3)]
    assert "undecodable" in letters[0].reason
    assert "failing attempt 3 on purpose" in letters[1].reason
    assert json.loads(letters[1].body)["payload"]["key"] == "always-fails"


def test_an_invalid_payload_is_dead_lettered_without_crashing_the_consumer(bus, relay, consumer, collector):
    bad = Envelope(type="test.happened", version=1, payload={"seq": "not a number"}, correlation_id="c-bad-001")
    publish_raw(bus, bad.to_json(), message_id=bad.message_id)
    letter = wait_until(lambda: DeadLetter.objects.first())
    assert "invalid payload" in letter.reason and letter.message_id == bad.message_id
    emit("still-alive")
    wait_until(lambda: effects("still-alive") == 1)


def test_a_replayed_dead_letter_is_handled_as_a_first_attempt(bus, relay, consumer, collector):
    emit("replay-me", permanent=True)
    letter = wait_until(lambda: DeadLetter.objects.first())
    # the operator fixes the cause (here: the payload) and replays
    body = json.loads(letter.body)
    body["payload"]["permanent"] = False
    DeadLetter.objects.filter(pk=letter.pk).update(body=json.dumps(body))
    dead_letter_replay(dead_letter_id=letter.pk)
    wait_until(lambda: effects("replay-me") == 1)
    assert DeadLetter.objects.get(pk=letter.pk).state == "replayed"


def test_a_handler_slower_than_two_heartbeats_keeps_its_connection(bus, relay, run_consumers, settings):
    settings.RABBITMQ_HEARTBEAT = 1
    running = run_consumers(test_effects)
    emit("slow", sleep=3.5)
    wait_until(lambda: effects("slow") == 1, timeout=20)
    emit("after-slow")
    wait_until(lambda: effects("after-slow") == 1)
    running.stop()
    assert effects("slow") == 1
    assert running.worker.handled == 2  # no redelivery, no reconnect


def test_sigterm_finishes_the_message_in_hand_then_exits(bus, relay, tmp_path):
    worker = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus, LOG_LEVEL="DEBUG")
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 1, what="the consumer")
    emit("in-hand", sleep=1.5)
    wait_until(lambda: "handling test.happened" in worker.log(), what="the message to be in hand")
    assert worker.terminate() == 0, worker.log()
    assert effects("in-hand") == 1


def test_a_consumer_killed_mid_message_redelivers_and_the_effect_happens_once(bus, relay, tmp_path):
    worker = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus, LOG_LEVEL="DEBUG")
    wait_until(lambda: queue_depth(bus, "test.effects")[1] == 1, what="the consumer")
    emit("killed", sleep=3)
    wait_until(lambda: "handling test.happened" in worker.log(), what="the message to be in hand")
    worker.kill()
    assert effects("killed") == 0
    restarted = ManagedProcess("consume", "test.effects", log_dir=tmp_path, RABBITMQ_URL=bus)
    try:
        wait_until(lambda: effects("killed") == 1, timeout=30)
        emit("marker")
        wait_until(lambda: effects("marker") == 1)
    finally:
        restarted.terminate()
    assert effects("killed") == 1


def test_every_registered_consumer_has_a_queue_name_saying_who_consumes_what():
    for name, consumer in registered().items():
        assert name == consumer.queue and "." in name


def test_the_http_request_id_reaches_the_consumer_of_the_orders_event(
    bus, relay, run_consumers, customer, restaurant, menu
):
    from django.test import Client

    from ordering.services import api_token_issue

    token = api_token_issue(user=customer)
    run_consumers(test_order_placed)
    response = Client().post(
        "/api/v1/orders",
        data={
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": menu["pasta"].pk, "quantity": 2}],
            "delivery_address": "1 Test Lane",
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "checkout-req-777"},
    )
    assert response.status_code == 201
    order_id = response.json()["id"]
    effect = wait_until(lambda: Effect.objects.filter(key=f"order:{order_id}").first())
    assert effect.correlation_id == "checkout-req-777"


def test_a_failing_message_inside_a_batch_costs_the_others_nothing(bus, relay, run_consumers):
    # given 40 messages waiting (so the consumer takes them in batches), one failing once
    with transaction.atomic():
        for seq in range(40):
            outbox_write(
                event=TEST_HAPPENED,
                payload={"key": "batched", "seq": seq, "fail_times": 1 if seq == 17 else 0},
                aggregate=f"batch:{seq}",
            )
    wait_until(lambda: unsent() == 0 and queue_depth(bus, "test.effects")[0] == 40, what="a full queue")
    # when a consumer starts on the full queue
    running = run_consumers(test_effects)
    wait_until(lambda: effects("batched") == 40, timeout=30)
    running.stop()
    # then every message took effect exactly once, the failing one after its retry
    seqs = list(Effect.objects.filter(key="batched").values_list("seq", flat=True))
    assert sorted(seqs) == list(range(40))
    assert seqs[-1] == 17


def test_a_duplicate_inside_a_batch_has_one_effect_and_the_batch_still_goes_through(bus, run_consumers):
    envelopes = [
        Envelope(type="test.happened", version=1, payload={"key": "batch-dup", "seq": i}, correlation_id="c-batch-dup")
        for i in range(12)
    ]
    for envelope in [*envelopes, envelopes[3]]:
        publish_raw(bus, envelope.to_json(), message_id=envelope.message_id)
    wait_until(lambda: queue_depth(bus, "test.effects")[0] == 13)
    running = run_consumers(test_effects)
    wait_until(lambda: running.worker.handled == 13, what="all 13 deliveries handled")
    running.stop()
    assert sorted(Effect.objects.filter(key="batch-dup").values_list("seq", flat=True)) == list(range(12))


def test_published_messages_carry_the_envelope_and_amqp_properties(bus, relay):
    # a queue of the test's own, bound to the billing exchange
    connection = pika.BlockingConnection(pika.URLParameters(bus))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "billing", "order.placed")
    from ordering.events import ORDER_PLACED

    with correlation_context("props-corr-0001"), transaction.atomic():
        envelope = outbox_write(
            event=ORDER_PLACED,
            aggregate="order:9",
            payload={
                "order_id": 9,
                "customer_id": 1,
                "restaurant_id": 2,
                "total": "12.50",
                "currency": "EUR",
                "version": 1,
            },
        )
    got: list = []

    def fetch():
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            got.append((properties, body))
        return got

    properties, body = wait_until(fetch, what="the message")[0]
    connection.close()
    assert properties.message_id == envelope.message_id
    assert properties.correlation_id == "props-corr-0001"
    assert properties.type == "order.placed"
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2
    assert abs(properties.timestamp - int(envelope.occurred_at.timestamp())) <= 1
    decoded = Envelope.from_json(body)
    assert (decoded.type, decoded.version, decoded.payload["total"]) == ("order.placed", 1, "12.50")


def test_a_lingering_consumer_handles_a_trickle_as_one_batch(bus, relay, run_consumers):
    from tests.busapp.consumers import TEST_GATHERED, test_gathered

    runner = run_consumers(test_gathered)
    # when four messages trickle in, each in a transaction of its own, 50 ms apart (well
    # within the consumer's 0.5 s linger)
    for index in range(4):
        with transaction.atomic():
            outbox_write(event=TEST_GATHERED, payload={"key": f"trickle-{index}"}, aggregate=f"trickle:{index}")
        time.sleep(0.05)  # the trickle itself, not a wait for an effect
    wait_until(lambda: Effect.objects.filter(consumer="test.gathered").count() == 4, what="the four messages")
    runner.stop()
    # then they were handled together, in one transaction
    assert set(Effect.objects.filter(consumer="test.gathered").values_list("seq", flat=True)) == {4}
