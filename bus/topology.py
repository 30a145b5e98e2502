"""The RabbitMQ topology, declared once in code and applied idempotently.

Exchanges:

* ``billing``, ``notification``, ``customer``, ``balance`` — topic exchanges, one per domain.
* ``audit`` — fanout bound to every domain exchange (exchange-to-exchange, key ``#``), so one
  queue sees every event.
* ``customer`` also takes, by exchange-to-exchange bindings, the events of other domains that a
  customer is told about (``CUSTOMER_FEEDS``: an order paid, ready, refunded …).
* ``dead-letter`` — direct; routing key = the work queue's name, into ``<queue>.dead``.

Per consumer (bus/consumer.py):

* ``<queue>`` — durable quorum queue with a delivery limit and at-least-once dead-lettering
  to ``dead-letter`` (a classic queue with ``x-max-priority`` when the consumer asks for
  priorities: quorum queues have none on RabbitMQ 3.10/3.11).
* ``<queue>.retry.<n>`` — one quorum queue per retry delay: messages wait out the queue's TTL
  and are dead-lettered back into ``<queue>`` through the default exchange. One queue per
  delay, because a per-message TTL expires only at the head of a queue.
* ``<queue>.dead`` — quorum; what failed for good, with the reason in its headers.
* ``<queue>.delay.<n>s`` — for a consumer with ``delay_seconds``: takes the bindings, holds
  each message for n seconds (queue TTL), then dead-letters it into ``<queue>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pika

from bus.catalog import CUSTOMER_FEEDS, Exchange
from bus.connection import connection_parameters
from bus.consumer import Consumer, registered

logger = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
DOMAIN_EXCHANGES = (Exchange.BILLING, Exchange.NOTIFICATION, Exchange.CUSTOMER, Exchange.BALANCE)
EXCHANGES: dict[str, str] = {
    **{name: "topic" for name in DOMAIN_EXCHANGES},
    Exchange.AUDIT: "fanout",
    DEAD_LETTER_EXCHANGE: "direct",
}
# "" is the default exchange: straight to the queue named by the routing key (replays, RPC).
EXCHANGE_NAMES = frozenset(EXCHANGES) | {""}


def _quorum(**extra: object) -> dict[str, object]:
    return {
        "x-queue-type": "quorum",
        # At-least-once dead-lettering needs reject-publish overflow (RabbitMQ >= 3.10).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **extra,
    }


def work_queue_arguments(consumer: Consumer) -> dict[str, object]:
    dead_letter = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": consumer.queue}
    if consumer.max_priority:
        return {"x-max-priority": consumer.max_priority, **dead_letter}
    return _quorum(**{"x-delivery-limit": consumer.delivery_limit, **dead_letter})


def declare_exchanges(channel) -> None:  # type: ignore[no-untyped-def]
    for name, kind in EXCHANGES.items():
        channel.exchange_declare(exchange=name, exchange_type=kind, durable=True)
    for name in DOMAIN_EXCHANGES:
        channel.exchange_bind(destination=Exchange.AUDIT, source=name, routing_key="#")
    # What a customer is told about, wherever its domain publishes it (bus/catalog.py). A
    # message reaches a queue once however many paths lead there (the audit queue too).
    for source, key in CUSTOMER_FEEDS:
        channel.exchange_bind(destination=Exchange.CUSTOMER, source=source, routing_key=key)


def declare_consumer(channel, consumer: Consumer) -> None:  # type: ignore[no-untyped-def]
    if consumer.consume_from is not None:
        return  # reads queues declared by others
    channel.queue_declare(queue=consumer.queue, durable=True, arguments=work_queue_arguments(consumer))
    bound = consumer.queue
    if consumer.delay_seconds:
        # Bindings go to the delay queue; its messages expire into the work queue.
        bound = consumer.delay_queue
        channel.queue_declare(queue=bound, durable=True, arguments=_quorum(**{
            "x-message-ttl": consumer.delay_seconds * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": consumer.queue,
        }))
    for exchange, key in consumer.all_bindings():
        channel.queue_bind(queue=bound, exchange=exchange, routing_key=key)
    for attempt, delay in enumerate(consumer.retry_delays, start=1):
        channel.queue_declare(
            queue=consumer.retry_queue(attempt),
            durable=True,
            arguments=_quorum(**{
                "x-message-ttl": int(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": consumer.queue,
            }),
        )
    channel.queue_declare(queue=consumer.dead_letter_queue, durable=True, arguments=_quorum())
    channel.queue_bind(queue=consumer.dead_letter_queue, exchange=DEAD_LETTER_EXCHANGE, routing_key=consumer.queue)


def declare_topology(consumers: Iterable[Consumer] | None = None) -> None:
    """Declare every exchange and the queues of ``consumers`` (default: all registered)."""
    consumers = list(registered().values() if consumers is None else consumers)
    connection = pika.BlockingConnection(connection_parameters("topology"))
    try:
        channel = connection.channel()
        declare_exchanges(channel)
        for consumer in consumers:
            declare_consumer(channel, consumer)
    finally:
        connection.close()
    logger.info("topology declared", extra={"consumers": [c.queue for c in consumers]})
