"""Consumers the bus tests run, in-process or as `manage.py consume` subprocesses.

``test.happened`` payloads steer the handler: ``sleep`` seconds of work, ``fail_times``
failures before succeeding (``-1``: always), ``permanent`` to give up at once.
"""

from __future__ import annotations

import threading
import time

from bus.catalog import EventType, Exchange, Payload
from bus.correlation import get_correlation_id
from bus.handlers import EventHandler, Message, Permanent, RpcServer, register
from ordering.events import ORDER_PLACED
from tests.busapp.models import Effect


class Happened(Payload):
    key: str
    seq: int = 0
    aggregate: str = ""
    sleep: float = 0.0
    fail_times: int = 0
    permanent: bool = False


class Add(Payload):
    a: int
    b: int
    fail: str = ""
    sleep: float = 0.0


TEST_HAPPENED = EventType("test.happened", Exchange.CUSTOMER, "test.happened", Happened)
TEST_ADD = EventType("test.add", Exchange.BALANCE, "test.add", Add)
TEST_QUICK = EventType("test.quick", Exchange.CUSTOMER, "test.quick", Happened)


def record(message: Message) -> None:
    payload = message.payload
    if payload.permanent:
        raise Permanent("this message can never succeed")
    if payload.sleep:
        time.sleep(payload.sleep)
    if payload.fail_times:
        # Attempts are counted through the retry header, which survives the rollback.
        if payload.fail_times < 0 or message.attempt <= payload.fail_times:
            raise RuntimeError(f"failing attempt {message.attempt} on purpose")
    Effect.objects.create(
        consumer="test.effects",
        key=payload.key,
        message_id=message.message_id,
        seq=payload.seq,
        aggregate=payload.aggregate,
        correlation_id=get_correlation_id() or "",
    )


def add(message: Message) -> int:
    payload = message.payload
    if payload.sleep:
        time.sleep(payload.sleep)
    if payload.fail == "business":
        error = ValueError("the numbers do not add up")
        error.code = "does_not_add_up"  # type: ignore[attr-defined]
        raise error
    if payload.fail == "crash":
        raise RuntimeError("unexpected")
    return payload.a + payload.b


test_effects = register(
    EventHandler(queue="test.effects", events=[TEST_HAPPENED], handler=record, retry_delays=(0.2, 0.4))
)
test_rpc = register(RpcServer(queue="test.rpc", events=[TEST_ADD], handler=add, prefetch=10))


def record_order_placed(message: Message) -> None:
    Effect.objects.create(
        consumer="test.order_placed",
        key=f"order:{message.payload.order_id}",
        message_id=message.message_id,
        correlation_id=get_correlation_id() or "",
    )


test_order_placed = register(
    EventHandler(queue="test.order_placed", events=[ORDER_PLACED], handler=record_order_placed)
)


class Gathered(Payload):
    key: str


TEST_GATHERED = EventType("test.gathered", Exchange.CUSTOMER, "test.gathered", Gathered)


def record_gathered(messages: list[Message]) -> list[None]:
    """One effect per message, each naming how many messages its batch had (``seq``)."""
    Effect.objects.bulk_create(
        [
            Effect(consumer="test.gathered", key=m.payload.key, message_id=m.message_id, seq=len(messages))
            for m in messages
        ]
    )
    return [None] * len(messages)


test_gathered = register(
    EventHandler(
        queue="test.gathered",
        events=[TEST_GATHERED],
        handler=lambda m: record_gathered([m]),
        batch_handler=record_gathered,
        linger=0.5,
    )
)


def record_quick(message: Message) -> None:
    """As :func:`record`, naming in ``aggregate`` the thread that ran it."""
    payload = message.payload
    if payload.sleep:
        time.sleep(payload.sleep)
    Effect.objects.create(
        consumer="test.quick",
        key=payload.key,
        message_id=message.message_id,
        seq=payload.seq,
        aggregate=threading.current_thread().name,
    )


# A quick consumer (bus/handlers.py): its handlers run on the connection's thread.
test_quick = register(
    EventHandler(
        queue="test.quick",
        events=[TEST_QUICK],
        handler=record_quick,
        quick=True,
        timeout=5.0,
        retry_delays=(0.2,),
    )
)
