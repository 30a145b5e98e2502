"""The consumer runner against what a broker can hand it: malformed headers and properties,
letters the collector cannot parse, publishes the broker refuses or cannot route, full
queues, stale RPC connections and failing RPC commands. Each crashed, lost a message or left
a wrong dead letter before."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import pika
import pytest

from bus.deadletters import PARKING_QUEUE, dead_letter_collector
from bus.envelope import Envelope
from bus.handlers import EventHandler, QueueReader
from bus.models import DeadLetter
from bus.rpc import RemoteError, RpcClient
from bus.runner import ATTEMPT_HEADER
from bus.topology import TopologyMismatch, declare_topology, work_queue_arguments
from tests.broker import queue_depth
from tests.busapp.consumers import TEST_ADD, TEST_HAPPENED, record, test_effects, test_rpc
from tests.busapp.models import Effect
from tests.support import wait_until


def publish(
    url: str,
    body: bytes,
    *,
    exchange: str = "customer",
    routing_key: str = "test.happened",
    message_id: str | None = None,
    headers: dict | None = None,
    type: str = "test.happened",
) -> None:
    """Put one message on the broker with exactly the properties given (a bad producer)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(message_id=message_id, delivery_mode=2, type=type, headers=headers),
            mandatory=True,
        )
    finally:
        connection.close()


def happened(key: str, **fields) -> Envelope:
    return Envelope(type="test.happened", version=1, payload={"key": key, **fields}, correlation_id=f"c-{key}")


def effects(key: str) -> int:
    return Effect.objects.filter(key=key).count()


def delete_queues(url: str, *queues: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        connection.close()


def take_one(url: str, queue: str) -> tuple[pika.BasicProperties, bytes] | None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        method, properties, body = connection.channel().basic_get(queue, auto_ack=True)
        return None if method is None else (properties, body)
    finally:
        connection.close()


@pytest.fixture
def collector(run_consumers):
    return run_consumers(dead_letter_collector)


# --- defect 2: malformed headers and properties ---------------------------------------------------


def test_malformed_headers_and_properties_are_dead_lettered_and_the_consumer_lives(bus, collector, run_consumers):
    bad_headers = {
        "attempt-text": {ATTEMPT_HEADER: "abc"},
        "attempt-negative": {ATTEMPT_HEADER: -3},
        "attempt-zero": {ATTEMPT_HEADER: 0},
        "attempt-huge": {ATTEMPT_HEADER: 2**62},
        "attempt-decimal": {ATTEMPT_HEADER: Decimal("1.5")},
        "attempt-bool": {ATTEMPT_HEADER: True},
        "attempt-table": {ATTEMPT_HEADER: {"n": 1}},
    }
    consumer = run_consumers(test_effects)
    for key, headers in bad_headers.items():
        envelope = happened(key)
        publish(bus, envelope.to_json(), message_id=envelope.message_id, headers=headers)
    publish(bus, happened("no-message-id").to_json(), message_id=None)
    letters = wait_until(
        lambda: DeadLetter.objects.count() == len(bad_headers) + 1 and list(DeadLetter.objects.all()),
        timeout=30,
        what="every bad message dead-lettered",
    )
    good = happened("good-after-bad")
    publish(bus, good.to_json(), message_id=good.message_id)
    wait_until(lambda: effects("good-after-bad") == 1, what="the next good message handled")
    assert consumer.thread.is_alive()
    consumer.stop()
    by_key = {json.loads(letter.body)["payload"]["key"]: letter for letter in letters}
    for key in bad_headers:
        assert by_key[key].queue == "test.effects"
        assert "x-passline-attempt" in by_key[key].reason, by_key[key].reason
    assert "message_id" in by_key["no-message-id"].reason
    assert not Effect.objects.exclude(key="good-after-bad").exists()


def test_the_collector_stores_any_letter_however_malformed(bus, collector):
    letters = [
        (
            b'{"payload": {"key": "bad-attempts"}}',
            "m-bad-attempts",
            {"x-passline-reason": "boom", "x-passline-attempts": "many", "x-passline-queue": 5},
        ),
        (b"\xff\xfe not utf-8 \x00", "m-bad-body", {"x-delivery-count": "abc", "x-death": "not a list"}),
        (
            b"{}",
            None,
            {
                "x-death": [{"count": "x", "reason": 7}, "junk"],
                "decimal": Decimal("-1.25"),
                "deep": [[{"a": [1, {"b": None}]}]],
                "x-first-death-reason": ["a", "list"],
            },
        ),
        (b"{}", "m" * 200, {"x-passline-attempts": -4, "x-passline-reason": {"nested": b"bytes"}}),
        (b"{}", "m-no-headers", None),
    ]
    for body, message_id, headers in letters:
        publish(
            bus,
            body,
            exchange="dead-letter",
            routing_key="test.effects",
            message_id=message_id,
            headers=headers,
            type="t" * 200,
        )
    wait_until(lambda: DeadLetter.objects.count() == len(letters), timeout=30, what="every letter stored")
    wait_until(lambda: queue_depth(bus, "test.effects.dead")[0] == 0, what="the dead queue drained")
    assert collector.thread.is_alive()
    stored = {letter.message_id: letter for letter in DeadLetter.objects.all()}
    assert stored["m-bad-attempts"].attempts == 0 and stored["m-bad-attempts"].reason == "boom"
    assert "\ufffd" in stored["m-bad-body"].body
    assert ("m" * 64) in stored


# --- defect 3: republishes the broker cannot route or refuses -------------------------------------


def test_an_unroutable_retry_leaves_the_original_in_its_queue(bus, run_consumers, caplog):
    caplog.set_level(logging.WARNING, logger="bus.runner")
    delete_queues(bus, test_effects.retry_queue(1))  # a retry queue gone missing
    running = run_consumers(test_effects, declare=False)
    try:
        envelope = happened("unroutable-retry", fail_times=1)
        publish(bus, envelope.to_json(), message_id=envelope.message_id)
        wait_until(
            lambda: any("unroutable" in r.getMessage() for r in caplog.records),
            timeout=30,
            what="the runner to report the unroutable republish",
        )
        declare_topology([test_effects])  # the operator brings the queue back
        wait_until(lambda: effects("unroutable-retry") == 1, timeout=30, what="the message, not lost")
    finally:
        running.stop()
        declare_topology([test_effects])


def always_fails(delivery) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("the database is away")


def test_a_letter_the_collector_keeps_failing_on_is_parked_not_lost(bus, run_consumers):
    failing = QueueReader(
        queue="test.failing_collector", handler=always_fails, consume_from=lambda: [test_effects.dead_letter_queue]
    )
    running = run_consumers(failing, max_requeue_pause=0.05)
    publish(
        bus,
        b'{"payload": {"key": "parked"}}',
        exchange="dead-letter",
        routing_key="test.effects",
        message_id="m-parked",
        headers={"x-passline-reason": "boom"},
    )
    wait_until(lambda: queue_depth(bus, PARKING_QUEUE)[0] == 1, timeout=60, what="the letter parked")
    running.stop()
    properties, body = take_one(bus, PARKING_QUEUE)
    assert properties.message_id == "m-parked" and json.loads(body)["payload"]["key"] == "parked"
    assert properties.headers["x-first-death-queue"] == "test.effects.dead"
    assert queue_depth(bus, test_effects.dead_letter_queue)[0] == 0


def test_a_dead_letter_refused_by_a_full_dead_queue_stays_in_its_work_queue(bus, run_consumers):
    small = EventHandler(
        queue="test.small",
        events=[TEST_HAPPENED],
        handler=record,
        bind_events=False,
        bindings=[("customer", "test.small")],
        retry_delays=(),
        max_length=1,
        delivery_limit=3,
    )
    delete_queues(bus, small.queue, small.dead_letter_queue)
    declare_topology([small])
    running = run_consumers(small, declare=False, max_requeue_pause=0.05)
    try:
        letters = [happened(f"small-{i}", permanent=True) for i in range(3)]
        for envelope in letters:
            publish(bus, envelope.to_json(), routing_key="test.small", message_id=envelope.message_id)
        # the dead queue is full (a quorum queue takes the one message that fills it past its
        # bound, then refuses): a dead letter is refused there, again and again, and kept
        wait_until(lambda: running.worker.refused >= 2, timeout=30, what="a refused dead letter")
        assert queue_depth(bus, small.dead_letter_queue)[0] <= 2
        got: list[str] = []

        def drain() -> bool:
            while (taken := take_one(bus, small.dead_letter_queue)) is not None:
                got.append(taken[0].message_id)
            return len(got) == len(letters)

        # once an operator makes room, the refused one arrives: nothing was lost
        wait_until(drain, timeout=30, what="every dead letter")
    finally:
        running.stop()
        delete_queues(bus, small.queue, small.dead_letter_queue)
    assert sorted(got) == sorted(envelope.message_id for envelope in letters)


def test_a_queue_declared_with_other_arguments_is_named_with_what_to_do(bus):
    old = EventHandler(queue="test.old_arguments", events=(), handler=record, bind_events=False)
    delete_queues(bus, old.queue)
    connection = pika.BlockingConnection(pika.URLParameters(bus))
    try:
        arguments = {k: v for k, v in work_queue_arguments(old).items() if k != "x-max-length"}
        connection.channel().queue_declare(old.queue, durable=True, arguments=arguments)
    finally:
        connection.close()
    try:
        with pytest.raises(TopologyMismatch) as error:
            declare_topology([old])
    finally:
        delete_queues(bus, old.queue, old.dead_letter_queue)
    assert "test.old_arguments" in str(error.value) and "delete" in str(error.value)


# --- defects 4 and 5: RPC ------------------------------------------------------------------------


def test_an_idle_rpc_client_calls_successfully_after_many_heartbeats(bus, run_consumers, settings):
    settings.RABBITMQ_HEARTBEAT = 1
    run_consumers(test_rpc)
    client = RpcClient()
    try:
        wait_until(lambda: queue_depth(bus, "test.rpc")[1] == 1, what="the RPC server")
        assert client.call(TEST_ADD, {"a": 1, "b": 2}) == 3
        time.sleep(5)  # idle: the broker gives up on a silent connection after two heartbeats
        assert client.call(TEST_ADD, {"a": 10, "b": 20}) == 30
    finally:
        client.close()


def test_a_failed_rpc_command_answers_the_caller_and_leaves_no_dead_letter(bus, run_consumers, caplog):
    caplog.set_level(logging.WARNING, logger="bus.runner")
    running = run_consumers(test_rpc)
    client = RpcClient()
    try:
        wait_until(lambda: queue_depth(bus, "test.rpc")[1] == 1, what="the RPC server")
        with pytest.raises(RemoteError) as error:
            client.call(TEST_ADD, {"a": 1, "b": 1, "fail": "crash"})
        wait_until(lambda: running.worker.handled == 1, what="the command settled")
    finally:
        client.close()
        running.stop()
    assert error.value.code == "internal_error"
    assert queue_depth(bus, test_rpc.dead_letter_queue)[0] == 0
    failed = [r for r in caplog.records if "rpc command" in r.getMessage().lower()]
    assert failed and failed[0].levelno >= logging.WARNING and getattr(failed[0], "call_id", "")
