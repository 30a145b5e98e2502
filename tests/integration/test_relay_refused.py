"""Messages the broker refuses (nack) on the real broker: held, then sent as soon as it takes
publishes to their route again, in their aggregate's order.

A classic queue with ``x-max-length`` and ``reject-publish`` refuses every publish while it is
full, deterministically, as a quorum queue between leaders does for a while.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pika
import pytest
from django.db import transaction
from django.utils import timezone
from pika.adapters.blocking_connection import BlockingChannel

from bus.models import OutboxMessage
from bus.outbox import outbox_write
from bus.relay import REFUSED
from bus.topology import DEAD_LETTER_EXCHANGE
from tests.busapp.consumers import TEST_HAPPENED
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "test.relay.refusing"
ROOM = 3
# Far longer than the test waits: a row sent before it had to be freed by the route's confirm.
PAUSE = 300.0
T = TypeVar("T")


def on_channel(url: str, work: Callable[[BlockingChannel], T]) -> T:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return work(connection.channel())
    finally:
        connection.close()


@pytest.fixture
def refusing_queue(bus: str) -> Iterator[str]:
    """A queue that holds ``ROOM`` messages and refuses more, bound to the dead-letter exchange
    (direct) by its own name."""

    def declare(channel: BlockingChannel) -> None:
        channel.queue_declare(QUEUE, durable=True, arguments={"x-max-length": ROOM, "x-overflow": "reject-publish"})
        channel.queue_bind(QUEUE, DEAD_LETTER_EXCHANGE, routing_key=QUEUE)
        channel.queue_purge(QUEUE)

    on_channel(bus, declare)
    yield bus
    on_channel(bus, lambda channel: channel.queue_delete(QUEUE))


def fill(url: str) -> None:
    def publish(channel: BlockingChannel) -> None:
        channel.confirm_delivery()
        for index in range(ROOM):
            channel.basic_publish(
                DEAD_LETTER_EXCHANGE, QUEUE, b"{}", pika.BasicProperties(message_id=f"filler-{index}")
            )

    on_channel(url, publish)


def take_all(url: str) -> list[str]:
    """The message ids in the queue, in its order; the queue emptied."""

    def get(channel: BlockingChannel) -> list[str]:
        ids: list[str] = []
        while True:
            method, properties, _body = channel.basic_get(QUEUE, auto_ack=True)
            if method is None or properties is None:
                return ids
            ids.append(str(properties.message_id))

    return on_channel(url, get)


def write(aggregate: str, count: int) -> list[OutboxMessage]:
    """``count`` committed outbox rows of ``aggregate``, routed to the refusing queue."""
    with transaction.atomic():
        ids = [
            outbox_write(event=TEST_HAPPENED, payload={"key": aggregate, "seq": seq}, aggregate=aggregate).message_id
            for seq in range(count)
        ]
        OutboxMessage.objects.filter(message_id__in=ids).update(exchange=DEAD_LETTER_EXCHANGE, routing_key=QUEUE)
    return list(OutboxMessage.objects.filter(message_id__in=ids).order_by("id"))


def test_refused_messages_go_at_the_routes_next_confirm_in_their_aggregates_order(refusing_queue, run_relay):
    # given: the queue full, and two messages of one order for it
    fill(refusing_queue)
    first, second = write("order:9", 2)
    run_relay(refused_pause=(PAUSE, PAUSE))

    # when: the broker refuses them
    wait_until(
        lambda: OutboxMessage.objects.filter(pk__in=[first.pk, second.pk], attempts__gte=1).count() == 2,
        timeout=30,
        what="both rows refused",
    )
    held = OutboxMessage.objects.get(pk=first.pk)
    assert held.sent_at is None and held.last_error == REFUSED
    assert held.available_at > timezone.now() + timedelta(seconds=PAUSE / 2)

    # and the queue has room again, and a new message goes to it
    assert take_all(refusing_queue) == [f"filler-{index}" for index in range(ROOM)]
    (probe,) = write("order:10", 1)

    # then: its confirm frees the held rows, long before their pause ends
    wait_until(
        lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(),
        timeout=60,
        what="every row sent",
    )
    # and the order's messages reached the queue in the order they were written, each once
    assert take_all(refusing_queue) == [probe.message_id, first.message_id, second.message_id]
    assert OutboxMessage.objects.get(pk=first.pk).attempts == 1
