"""Settling a handled delivery (bus/runner.py's second half): the reply of an RPC command, a
retry or a dead letter (republished, mandatory and confirmed, before the original is acked),
the ack itself (only on the channel the delivery came from), and giving a delivery back to its
queue when the broker refuses a republish."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError

from bus import metrics as bus_metrics
from bus.correlation import get_correlation_id
from bus.delivery import ATTEMPT_HEADER, Delivery, Outcome
from bus.roles import PUBLISHER_HEADER
from bus.topology import DEAD_LETTER_EXCHANGE

logger = logging.getLogger("bus.runner")


# Headers of an RPC reply naming the request's trace: its correlation id, and the command it answers.
CORRELATION_HEADER = "x-passline-correlation-id"
CAUSATION_HEADER = "x-passline-causation-id"


def _reply_trace(delivery: Delivery) -> dict[str, str]:
    """The trace of a reply: the command's request (correlation) and the command itself (cause)."""
    headers: dict[str, str] = {}
    # Settled under the command's request (bus/delivery.py reads it from the envelope).
    trace = get_correlation_id()
    if trace:
        headers[CORRELATION_HEADER] = trace
    if delivery.properties.message_id:
        headers[CAUSATION_HEADER] = delivery.properties.message_id
    return headers


class Settling:
    """The runner's settling half; :class:`bus.runner.WorkerRunner` provides the state."""

    _channel: BlockingChannel | None
    _reply_channel: BlockingChannel | None
    _requeues_in_a_row: int
    _stopping: threading.Event
    refused: int
    handled: int
    max_requeue_pause: float
    # The runner's own RabbitMQ user: every republish and reply carries it as its user_id.
    _user: str

    def _publisher(self, delivery: Delivery) -> str:
        raise NotImplementedError

    @property
    def _live(self) -> pika.BlockingConnection:
        raise NotImplementedError

    def _settle_clean_batch(self, deliveries: list[Delivery], outcomes: dict[int, Outcome]) -> bool:
        """Ack a batch whose every message succeeded with one ``multiple`` ack; False when any
        needs more (a reply, a retry, a dead letter), and the caller settles one by one.

        A batch is a run of deliveries from the front of the inbox, taken in the order the
        broker delivered them on this channel, and everything delivered before it has been
        settled: so acking the batch's last tag with ``multiple`` acks exactly the batch.
        """
        consumer = deliveries[0].consumer
        if consumer.rpc or consumer.consume_from is not None or len(deliveries) < 2:
            return False
        if any(outcome.status not in {"ok", "duplicate"} for outcome in outcomes.values()):
            return False
        channel = self._channel
        if channel is None or not channel.is_open or any(delivery.channel is not channel for delivery in deliveries):
            return False
        self._requeues_in_a_row = 0
        channel.basic_ack(delivery_tag=max(d.method.delivery_tag for d in deliveries), multiple=True)
        self.handled += len(deliveries)
        for status in ("ok", "duplicate"):
            if count := sum(1 for outcome in outcomes.values() if outcome.status == status):
                bus_metrics.settled(consumer.queue, status, count)
        return True

    def _settle(self, delivery: Delivery, outcome: Outcome, attempt: int) -> None:
        consumer = delivery.consumer
        if consumer.consume_from is not None:
            self._settle_raw(delivery, outcome)
            return
        if consumer.rpc and delivery.properties.reply_to:
            if outcome.status == "retry":
                # The caller is waiting and owns the retry (by the command's key): answer now,
                # and no retry or dead letter here, whose replay could repeat a command that
                # the caller's own retry has run since.
                logger.error(
                    "rpc command %s failed; answered internal_error, not retried here: %s",
                    delivery.properties.type,
                    outcome.reason,
                    extra={
                        "queue": consumer.queue,
                        "call_id": delivery.properties.correlation_id,
                        "message_id": delivery.properties.message_id,
                    },
                )
                self._reply(delivery, Outcome("dead", reason=outcome.reason, error_code="internal_error"))
                self._ack(delivery)
                return
            if outcome.status in {"ok", "dead"}:
                # A command that can never run (undecodable, Permanent) is answered too, so its
                # caller does not wait out its timeout; it is dead-lettered below (it ran never).
                self._reply(
                    delivery,
                    outcome
                    if outcome.status == "ok"
                    else Outcome("dead", reason=outcome.reason, error_code=outcome.error_code or "permanent_failure"),
                )
        try:
            if outcome.status == "retry" and attempt < consumer.max_attempts:
                self._republish(
                    delivery,
                    exchange="",
                    routing_key=consumer.retry_queue(attempt),
                    headers={ATTEMPT_HEADER: attempt + 1, "x-passline-last-error": outcome.reason[:1000]},
                )
                bus_metrics.RETRIED.labels(consumer.queue).inc()
            elif outcome.status in {"retry", "dead"}:
                logger.error(
                    "dead-lettering %s from %s after %d attempt(s): %s",
                    delivery.properties.message_id,
                    consumer.queue,
                    attempt,
                    outcome.reason,
                )
                self._republish(
                    delivery,
                    exchange=DEAD_LETTER_EXCHANGE,
                    routing_key=consumer.queue,
                    headers={
                        "x-passline-reason": outcome.reason[:2000],
                        "x-passline-queue": consumer.queue,
                        "x-passline-attempts": attempt,
                    },
                )
                bus_metrics.DEAD_LETTERED.labels(
                    consumer.queue, bus_metrics.dead_letter_reason(outcome.reason, outcome.error_code)
                ).inc()
        except (UnroutableError, NackError) as error:
            # Acking now would lose the message: it goes back to its queue and comes again.
            what = (
                "unroutable (a queue is missing: run manage.py declare_topology)"
                if isinstance(error, UnroutableError)
                else "refused by the broker (a full queue?)"
            )
            logger.error(
                "republishing %s from %s was %s; giving the original back to its queue",
                delivery.properties.message_id,
                consumer.queue,
                what,
                extra={"queue": consumer.queue, "message_id": delivery.properties.message_id},
            )
            self._give_back(delivery, requeue=True)
            return
        self._requeues_in_a_row = 0
        self._ack(delivery)

    def _settle_raw(self, delivery: Delivery, outcome: Outcome) -> None:
        """A raw consumer reads others' queues and has no retry or dead-letter queues: a failure
        gives the delivery back (a permanent one without requeue), and that queue's delivery
        limit or dead-letter route takes it from there."""
        if outcome.status in {"ok", "duplicate"}:
            self._requeues_in_a_row = 0
            self._ack(delivery)
            return
        logger.error(
            "%s failed on %s from %s; giving it back to the queue: %s",
            delivery.consumer.queue,
            delivery.properties.message_id,
            delivery.method.routing_key,
            outcome.reason,
            extra={"queue": delivery.consumer.queue, "message_id": delivery.properties.message_id},
        )
        self._give_back(delivery, requeue=outcome.status == "retry")

    def _give_back(self, delivery: Delivery, *, requeue: bool) -> None:
        """Nack the delivery, then pause (pumping I/O) so a fault that persists does not spin."""
        self.refused += 1
        bus_metrics.GIVEN_BACK.labels(delivery.consumer.queue).inc()
        if delivery.channel is self._channel and delivery.channel.is_open:
            delivery.channel.basic_nack(delivery_tag=delivery.method.delivery_tag, requeue=requeue)
        else:
            logger.warning("not nacking %s: its channel is gone", delivery.properties.message_id)
        pause = min(0.1 * 2**self._requeues_in_a_row, self.max_requeue_pause)
        self._requeues_in_a_row += 1
        deadline = time.monotonic() + pause
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            self._live.process_data_events(time_limit=left)

    def _republish(self, delivery: Delivery, *, exchange: str, routing_key: str, headers: dict[str, Any]) -> None:
        props = delivery.properties
        # The copy is published by this runner (the broker insists on its own user_id): the
        # first publisher, whom the broker authenticated, goes along in a header.
        publisher = self._publisher(delivery)
        if publisher:
            headers = {**headers, PUBLISHER_HEADER: publisher}
        properties = pika.BasicProperties(
            message_id=props.message_id,
            correlation_id=props.correlation_id,
            type=props.type,
            timestamp=props.timestamp,
            content_type=props.content_type,
            priority=props.priority,
            delivery_mode=pika.DeliveryMode.Persistent,
            user_id=self._user or None,
            headers={**delivery.headers, **headers},
        )
        # Blocks until the broker confirms (the channel is in confirm mode); mandatory, so a
        # message no queue takes raises UnroutableError instead of vanishing, and a queue that
        # refuses it (full) raises NackError.
        delivery.channel.basic_publish(
            exchange=exchange, routing_key=routing_key, body=delivery.body, properties=properties, mandatory=True
        )

    def _reply(self, delivery: Delivery, outcome: Outcome) -> None:
        if outcome.error_code:
            body = {"ok": False, "error": {"code": outcome.error_code, "message": outcome.reason}}
        else:
            body = {"ok": True, "result": outcome.result}
        # Not confirmed, unlike retries and dead letters: a reply to direct reply-to is
        # transient (no queue holds it, nothing is persisted), so a confirm would only say the
        # broker took it, never that the caller got it. A reply lost on the way (broker or
        # connection gone) ends in the caller's RpcTimeout, and the caller retries with the
        # same idempotency key, which answers the same. Waiting for a confirm per reply would
        # cost a round trip each, N per batch, for no guarantee. The command's effects are
        # committed before any reply is sent, so an answer never runs ahead of its effect.
        # Mandatory: a reply whose caller is gone comes back and is logged (_reply_returned).
        assert self._reply_channel is not None and delivery.properties.reply_to, "an RPC server's command"
        self._reply_channel.basic_publish(
            exchange="",
            routing_key=delivery.properties.reply_to,
            body=json.dumps(body, default=str).encode(),
            properties=pika.BasicProperties(
                # The caller takes a reply only from the role that serves the command (bus/roles.py).
                correlation_id=delivery.properties.correlation_id,
                content_type="application/json",
                user_id=self._user or None,
                # The AMQP correlation_id is the call id: the trace travels in headers.
                headers=_reply_trace(delivery),
            ),
            mandatory=True,
        )

    def _ack(self, delivery: Delivery) -> None:
        # A tag belongs to its channel: after a reconnect the old tag means nothing (or
        # another message), so a delivery from a dead channel is left to be redelivered.
        if delivery.channel is not self._channel or not delivery.channel.is_open:
            logger.warning("not acking %s: its channel is gone", delivery.properties.message_id)
            return
        delivery.channel.basic_ack(delivery_tag=delivery.method.delivery_tag)
