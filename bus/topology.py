"""The RabbitMQ topology, declared once in code and applied idempotently.

Exchanges:

* ``billing``, ``notification``, ``customer``, ``balance`` — topic exchanges, one per domain.
* ``audit`` — fanout bound to every domain exchange (exchange-to-exchange, key ``#``), so one
  queue sees every event.
* ``customer`` also takes, by exchange-to-exchange bindings, the events of other domains that a
  customer is told about (``notifications/events.py`` asks for them: an order paid, ready,
  refunded …; ``bus.catalog.EXCHANGE_BINDINGS``).
* ``dead-letter`` — direct; routing key = the work queue's name, into ``<queue>.dead``.

Per consumer (bus/handlers.py):

* ``<queue>`` — durable quorum queue with a delivery limit and at-least-once dead-lettering
  to ``dead-letter`` (a classic queue with ``x-max-priority`` when the consumer asks for
  priorities: quorum queues have none on RabbitMQ 3.10/3.11).
* ``<queue>.retry.<n>`` — one quorum queue per retry delay: messages wait out the queue's TTL
  and are dead-lettered back into ``<queue>`` through the default exchange. One queue per
  delay, because a per-message TTL expires only at the head of a queue.
* ``<queue>.dead`` — quorum; what failed for good, with the reason in its headers. Its own
  delivery limit dead-letters a letter the collector keeps failing on into ``bus.parked``;
  bounded in count and in bytes, refusing when full (the letter waits where it failed).
* ``<queue>.delay.<n>s`` — for a consumer with ``delay_seconds``: takes the bindings, holds
  each message for n seconds (queue TTL), then dead-letters it into ``<queue>``.
* ``bus.parked`` — the last resort: letters that ``bus.deadletters`` could not store. Nothing
  consumes it; operators look at it (its depth is a health signal) and move letters back.

Every queue is bounded: a delivery limit where anything consumes it, and ``x-max-length`` with
``reject-publish`` overflow, so a full queue refuses a publish (a nack: the publisher keeps
the message) instead of growing until the broker's memory alarm stops every producer.

A queue's arguments cannot change once declared: RabbitMQ refuses a redeclaration with other
arguments (PRECONDITION_FAILED). :func:`declare_topology` names every such queue and what an
operator does about it (drain and delete it, then declare again) in :class:`TopologyMismatch`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pika
from pika.exceptions import ChannelClosedByBroker

from bus import roles
from bus.catalog import EXCHANGE_BINDINGS, Exchange
from bus.connection import connection_parameters, node_parameters
from bus.handlers import Handler, registered

logger = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letter"
DOMAIN_EXCHANGES = (Exchange.BILLING, Exchange.NOTIFICATION, Exchange.CUSTOMER, Exchange.BALANCE)
EXCHANGES: dict[str, str] = {
    **dict.fromkeys(DOMAIN_EXCHANGES, "topic"),
    Exchange.AUDIT: "fanout",
    DEAD_LETTER_EXCHANGE: "direct",
}
# "" is the default exchange: straight to the queue named by the routing key (replays, RPC).
EXCHANGE_NAMES = frozenset(EXCHANGES) | {""}
# Where a dead letter goes when the collector failed on it DEAD_LETTER_DELIVERY_LIMIT times.
PARKING_QUEUE = "bus.parked"
PARKING_MAX_LENGTH = 100_000
# Bytes bound each queue of letters too: a count alone lets a few huge messages fill the disk.
# A full one refuses (reject-publish): a dead letter waits in the queue it failed in, nothing
# is dropped; the collector drains the .dead queues continuously, so only a stopped collector
# (or a flood) reaches the bound, and the broker's alarms are never the first to notice.
DEAD_LETTER_MAX_BYTES = 128 * 1024 * 1024
PARKING_MAX_BYTES = 512 * 1024 * 1024
# The collector stores whatever arrives, so only a fault of its own (the database away) makes
# it give a letter back; this many tries, with the runner's back-off between them, then park.
DEAD_LETTER_DELIVERY_LIMIT = 10
PRECONDITION_FAILED = 406


class TopologyMismatch(RuntimeError):
    """Queues on the broker were declared with other arguments than this version declares."""


def _quorum(*, max_length: int, **extra: object) -> dict[str, object]:
    return {
        "x-queue-type": "quorum",
        # At-least-once dead-lettering needs reject-publish overflow (RabbitMQ >= 3.10); the
        # length bound makes a full queue refuse publishes instead of growing without end.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": max_length,
        **extra,
    }


def work_queue_arguments(consumer: Handler) -> dict[str, object]:
    dead_letter = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": consumer.queue}
    if consumer.max_priority:
        return {
            "x-max-priority": consumer.max_priority,
            "x-max-length": consumer.max_length,
            "x-overflow": "reject-publish",
            **dead_letter,
        }
    return _quorum(max_length=consumer.max_length, **{"x-delivery-limit": consumer.delivery_limit, **dead_letter})


def dead_letter_queue_arguments(consumer: Handler) -> dict[str, object]:
    return _quorum(
        max_length=consumer.max_length,
        **{
            "x-max-length-bytes": DEAD_LETTER_MAX_BYTES,
            "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": PARKING_QUEUE,
        },
    )


def parking_queue_arguments() -> dict[str, object]:
    # No delivery limit and no dead-letter route: nothing consumes it, and past it is nowhere.
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-max-length": PARKING_MAX_LENGTH,
        "x-max-length-bytes": PARKING_MAX_BYTES,
    }


class _Declarer:
    """Declares queues on one connection, going on past a queue whose arguments differ (the
    broker closes the channel on that) so that one run names every such queue."""

    def __init__(self, connection: pika.BlockingConnection, *, recreate_empty: bool = False):
        self.connection = connection
        self.channel = connection.channel()
        self.recreate_empty = recreate_empty
        self.mismatches: list[str] = []

    def queue(self, name: str, arguments: dict[str, object]) -> None:
        try:
            self.channel.queue_declare(queue=name, durable=True, arguments=arguments)
        except ChannelClosedByBroker as error:
            if error.reply_code != PRECONDITION_FAILED:
                raise
            self.channel = self.connection.channel()
            if self.recreate_empty and self._delete_if_idle(name):
                self.channel.queue_declare(queue=name, durable=True, arguments=arguments)
                logger.warning("queue %s re-created with this version's arguments (it was empty and unused)", name)
                return
            self.mismatches.append(f"{name}: {error.reply_text}")

    def _delete_if_idle(self, name: str) -> bool:
        """Delete ``name`` if it holds no message and has no consumer (a stopped stack's queue
        that has drained): nothing is lost by declaring it anew."""
        found = self.channel.queue_declare(queue=name, passive=True).method
        if found.message_count or found.consumer_count:
            return False
        self.channel.queue_delete(queue=name)
        return True

    def check(self) -> None:
        if not self.mismatches:
            return
        names = [line.split(":", 1)[0] for line in self.mismatches]
        raise TopologyMismatch(
            f"{len(names)} queue(s) exist on the broker with other arguments than this version declares "
            "(RabbitMQ cannot change a queue's arguments): " + "; ".join(self.mismatches) + ". "
            "Stop the processes that publish to and consume them, let them drain (or move their messages "
            "elsewhere), delete them (rabbitmqctl delete_queue -p <vhost> <queue>, or the management UI), "
            "then run manage.py declare_topology again. Queues to delete: " + " ".join(names)
        )


def declare_exchanges(channel) -> None:  # type: ignore[no-untyped-def]
    for name, kind in EXCHANGES.items():
        channel.exchange_declare(exchange=name, exchange_type=kind, durable=True)
    for name in DOMAIN_EXCHANGES:
        channel.exchange_bind(destination=Exchange.AUDIT, source=name, routing_key="#")
    # What an app asked for (what a customer is told about, wherever its domain publishes it:
    # notifications/events.py). A message reaches a queue once however many paths lead there
    # (the audit queue too).
    for destination, source, key in EXCHANGE_BINDINGS:
        channel.exchange_bind(destination=destination, source=source, routing_key=key)


def declare_consumer(declarer: _Declarer, consumer: Handler) -> None:
    if consumer.consume_from is not None:
        # Reads queues declared by others, and never republishes (the runner gives its
        # deliveries back to the queue they came from), so it has no queues of its own.
        return
    into_work_queue = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": consumer.queue,
        "x-delivery-limit": consumer.delivery_limit,
    }
    declarer.queue(consumer.queue, work_queue_arguments(consumer))
    bound = consumer.queue
    if consumer.delay_seconds:
        # Bindings go to the delay queue; its messages expire into the work queue.
        bound = consumer.delay_queue
        declarer.queue(
            bound,
            _quorum(
                max_length=consumer.max_length, **{"x-message-ttl": consumer.delay_seconds * 1000, **into_work_queue}
            ),
        )
    for exchange, key in consumer.all_bindings():
        declarer.channel.queue_bind(queue=bound, exchange=exchange, routing_key=key)
    for attempt, delay in enumerate(consumer.retry_delays, start=1):
        declarer.queue(
            consumer.retry_queue(attempt),
            _quorum(max_length=consumer.max_length, **{"x-message-ttl": int(delay * 1000), **into_work_queue}),
        )
    declarer.queue(consumer.dead_letter_queue, dead_letter_queue_arguments(consumer))
    declarer.channel.queue_bind(
        queue=consumer.dead_letter_queue, exchange=DEAD_LETTER_EXCHANGE, routing_key=consumer.queue
    )


def declare_topology(
    consumers: Iterable[Handler] | None = None, *, recreate_empty: bool = False, url: str | None = None
) -> None:
    """Declare every exchange, the parking queue and the queues of ``consumers`` (default: all
    registered); :class:`TopologyMismatch` names the queues the broker has with other arguments.

    ``recreate_empty``: such a queue that is empty and has no consumer is deleted and declared
    anew (an upgrade with the stack stopped); only the others are a mismatch.

    ``url``: through that broker node (a caller that chose one); default: the first node of the
    cluster that answers. What is declared on one node is the cluster's: a quorum queue gets
    its replicas on up to three nodes (RabbitMQ's default initial group size), so declaring
    while a node is down gives fewer; ``rabbitmq-queues grow`` adds them back.
    """
    consumers = list(registered().values() if consumers is None else consumers)
    params = [node_parameters(url, roles.TOPOLOGY)] if url else connection_parameters(roles.TOPOLOGY)
    connection = pika.BlockingConnection(params)
    try:
        declarer = _Declarer(connection, recreate_empty=recreate_empty)
        declare_exchanges(declarer.channel)
        declarer.queue(PARKING_QUEUE, parking_queue_arguments())
        for consumer in consumers:
            declare_consumer(declarer, consumer)
        declarer.check()
    finally:
        if connection.is_open:
            connection.close()
    logger.info("topology declared", extra={"consumers": [c.queue for c in consumers]})
