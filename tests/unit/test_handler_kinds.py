"""A worker declares its handlers by kind, each with only the fields that mean something for
it: events in batches, commands answered, timers, raw queue readers."""

import pytest

from bus.handlers import EventHandler, QueueReader, RpcServer, Timer
from ordering.events import ORDER_PLACED


def handle(message):
    return None


def test_an_event_handler_batches_and_may_gather_but_answers_nobody():
    handler = EventHandler(queue="q.events", events=[ORDER_PLACED], handler=handle, linger=0.5)
    assert (handler.linger, handler.rpc, handler.delay_seconds, handler.consume_from) == (0.5, False, 0, None)
    assert handler.all_bindings() == [("billing", "order.placed")]


def test_an_rpc_server_answers_and_neither_gathers_nor_fires_later():
    server = RpcServer(queue="q.rpc", events=[ORDER_PLACED], handler=handle)
    assert server.rpc and server.linger == 0 and server.batch_handler is None and server.max_batch == 50
    with pytest.raises(TypeError):
        RpcServer(queue="q.rpc", events=[], handler=handle, linger=1.0)  # type: ignore[call-arg]


def test_a_timer_needs_its_delay_and_waits_in_a_queue_named_for_it():
    timer = Timer(queue="q.timer", events=[ORDER_PLACED], handler=handle, delay_seconds=600)
    assert timer.delay_queue == "q.timer.delay.600s" and not timer.rpc
    for no_delay in ({}, {"delay_seconds": 0}):
        with pytest.raises(ValueError, match="at least one second"):
            Timer(queue="q.timer", events=[], handler=handle, **no_delay)


def test_a_queue_reader_reads_the_queues_it_is_given_and_binds_nothing():
    reader = QueueReader(queue="q.reader", handler=handle, consume_from=lambda: ["a.dead", "b.dead"])
    assert reader.consume_from() == ["a.dead", "b.dead"] and reader.all_bindings() == []
    with pytest.raises(TypeError):
        EventHandler(queue="q.events", events=[], handler=handle, rpc=True)  # type: ignore[call-arg]
