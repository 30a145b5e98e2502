"""Upgrading a broker whose queues were declared with an earlier version's arguments."""

from __future__ import annotations

import pika
import pytest

from bus.handlers import EventHandler
from bus.topology import TopologyMismatch, declare_topology, work_queue_arguments
from tests.broker import queue_depth
from tests.busapp.consumers import record
from tests.integration.test_bus_faults import delete_queues

OLD = EventHandler(queue="test.upgraded", events=(), handler=record, bind_events=False, retry_delays=())


def _declare_as_an_earlier_version(url: str, *, messages: int) -> None:
    """The work queue as a version without a length bound declared it, holding ``messages``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        arguments = {k: v for k, v in work_queue_arguments(OLD).items() if k != "x-max-length"}
        channel.queue_declare(OLD.queue, durable=True, arguments=arguments)
        for _ in range(messages):
            channel.basic_publish("", OLD.queue, b"{}", pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


@pytest.fixture
def upgraded(bus):
    delete_queues(bus, OLD.queue, OLD.dead_letter_queue)
    yield bus
    delete_queues(bus, OLD.queue, OLD.dead_letter_queue)


def test_an_empty_unused_queue_is_declared_anew_with_the_new_arguments(upgraded):
    _declare_as_an_earlier_version(upgraded, messages=0)
    with pytest.raises(TopologyMismatch):
        declare_topology([OLD])

    declare_topology([OLD], recreate_empty=True)

    declare_topology([OLD])  # the arguments now match: a plain declare passes
    assert queue_depth(upgraded, OLD.queue) == (0, 0)


def test_a_queue_that_still_holds_messages_is_never_deleted(upgraded):
    _declare_as_an_earlier_version(upgraded, messages=3)

    with pytest.raises(TopologyMismatch) as error:
        declare_topology([OLD], recreate_empty=True)

    assert OLD.queue in str(error.value)
    assert queue_depth(upgraded, OLD.queue)[0] == 3
