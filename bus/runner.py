"""The consumer runner: everything about consuming except the business.

Per message: decode and validate the envelope and payload, check that its publisher's role
may publish its type (bus/roles.py; the broker vouches for the ``user_id``), restore the
correlation id, run the handler inside a transaction that also records the message id (a
duplicate has no second effect), then ack — only after that transaction committed, and only
on the channel the message came from. A handler that raises is retried through the
consumer's delay queues and dead-lettered after its last attempt; a message that can never
succeed (not an envelope, an unexpected type, an invalid payload, a malformed header or
property, a publisher without the right to its type, a ``Permanent`` error) is dead-lettered
at once, so a poison message never blocks the messages behind it, and nothing a producer puts
in a message can crash the runner. With roles on, the runner connects as its consumers' role
and declares nothing (the topology role does).

Every republish (a retry, a dead letter) is mandatory and confirmed: when the broker cannot
route it or refuses it (a full queue), the original is not acked but given back to its queue,
after a pause that grows while it goes on. A raw consumer (``consume_from``, the dead-letter
collector) never republishes: a failure gives the delivery back, and the queue's delivery
limit dead-letters it in the end (the ``.dead`` queues into ``bus.parked``).

An RPC server answers a failed command with ``internal_error`` and acks it without a retry or
a dead letter: the caller owns the retry (its commands are idempotent by key), and a dead
letter's replay would repeat a command that the caller's retry may already have run.

Messages already waiting for the same consumer are handled as one batch in one transaction
(a commit costs a disk flush). An RPC server's batch runs each command in a savepoint of its
own, so a business error answers that command alone; its replies go out once the batch
committed.

pika's BlockingConnection is single-threaded: while a handler works, nothing would answer the
broker's heartbeats. So handlers run on one worker thread and the connection's thread keeps
pumping I/O (heartbeats, new deliveries into a local inbox) until the handler is done; only
the connection's thread touches the channel. A ``quick`` consumer's handlers (bounded well
within a heartbeat) run on the connection's thread itself, without the hand-off; a watchdog
thread enforces their time-out all the same.

Four modules: ``bus/delivery.py`` checks and decodes a delivery, ``bus/handling.py`` runs the
handlers in their transactions, ``bus/settling.py`` replies, retries, dead-letters and acks,
and this one owns the connection and the batches.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

from bus import metrics as bus_metrics
from bus import registry, roles, shutdown
from bus.catalog import InvalidPayload
from bus.connection import connected_node, connection_parameters
from bus.correlation import correlation_context
from bus.delivery import (
    ATTEMPT_HEADER,
    MAX_ATTEMPT,
    Delivery,
    MalformedDelivery,
    Outcome,
    attempt_of,
    attempt_or_first,
    check_properties,
    decode,
    delivery_correlation_id,
)
from bus.envelope import EnvelopeError
from bus.handlers import Handler, Message
from bus.handling import in_transactions
from bus.settling import Settling
from bus.topology import declare_topology

__all__ = ["ATTEMPT_HEADER", "MAX_ATTEMPT", "WorkerRunner", "Delivery", "Outcome"]

logger = logging.getLogger(__name__)

# Exit status when a handler overran its timeout: the supervisor restarts the process, the
# broker hands the message out again, and its delivery limit ends a crash loop.
EXIT_HANDLER_TIMEOUT = 75


def _wake(connection_: pika.BlockingConnection) -> None:
    try:
        connection_.add_callback_threadsafe(lambda: None)
    except Exception:  # noqa: BLE001 - a closed connection has nobody to wake
        pass


def _reply_returned(channel, method, properties, body) -> None:  # type: ignore[no-untyped-def]
    # The caller's connection closed before its answer (it timed out, or died): it retries.
    logger.info(
        "an RPC reply found no caller: %s",
        method.reply_text,
        extra={"call_id": getattr(properties, "correlation_id", None)},
    )


class WorkerRunner(Settling):
    def __init__(
        self,
        consumers: list[Handler],
        *,
        declare: bool = True,
        max_requeue_pause: float = 5.0,
        role: str | None = None,
    ):
        if not consumers:
            raise ValueError("nothing to consume")
        self.consumers = consumers
        # With roles (bus/roles.py) the topology role declares; a worker may configure nothing.
        self.declare = declare
        # The bus role it connects as: given, or the one whose queues these are (with roles on).
        self.role = role
        self._user = ""
        self.handled = 0
        # Deliveries given back to their queue because the broker refused or could not route a
        # republish (or a raw consumer failed); each costs a pause that grows while they go on.
        self.refused = 0
        self.max_requeue_pause = max_requeue_pause
        self._requeues_in_a_row = 0
        self._stopping = threading.Event()
        self._inbox: deque[Delivery] = deque()
        self.in_hand: list[Delivery] = []  # the batch being handled (the registry reports its lag)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._reply_channel: BlockingChannel | None = None
        # One worker thread: handlers run in order, each with the thread's own DB connection.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handler")
        self._watchdog = _Watchdog()

    @property
    def name(self) -> str:
        return "+".join(c.queue for c in self.consumers)

    # --- life cycle --------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Consume until SIGTERM/SIGINT, reconnecting with back-off after broker loss.

        SIGTERM: take no new deliveries, finish and ack the batch in hand, give back what was
        prefetched, close and return; a second signal, or ``STOP_GRACE_SECONDS``, exits at
        once (bus/shutdown.py)."""
        if install_signal_handlers:
            shutdown.on_stop_signals(self.stop, name=f"consumer {self.name}")
        if self.role is None and roles.enforced():
            self.role = roles.role_of_queues(c.queue for c in self.consumers)
        self._user = roles.user(self.role or "")
        # Its handlers' RPC calls go out as its role too (a quick consumer's run on this thread).
        self._worker.submit(roles.act_as, self.role).result()
        roles.act_as(self.role)
        heartbeat = registry.runner_heartbeat(self)  # the worker registry (bus/registry.py)
        delay = 0.5
        while not self._stopping.is_set():
            opened = False
            try:
                if self.declare and not roles.enforced():
                    declare_topology(self.consumers)
                self._connect()
                opened = True
                logger.info("consuming", extra={"queues": self.name, "node": connected_node(self._live)})
                self._loop()
            except AMQPError as error:
                if not self._stopping.is_set():
                    logger.warning("consumer %s lost RabbitMQ: %r", self.name, error)
            finally:
                self._inbox.clear()  # unacked: the broker hands them out again
                self._disconnect()
            if self._stopping.is_set():
                break
            if opened:
                delay = 0.5
            logger.warning("consumer %s reconnecting in %.1f s", self.name, delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, 10.0)
        self._worker.shutdown(wait=True)
        self._watchdog.stop()
        heartbeat.stop()
        logger.info("consumer stopped", extra={"queues": self.name, "handled": self.handled})

    def stop(self) -> None:
        """Finish the batch in hand, then stop. Safe from a signal handler or another thread."""
        self._stopping.set()

    def _return_prefetched(self) -> None:
        """Stopping: no new deliveries (the consumers are cancelled), and those prefetched but
        not started go back to their queues now, for another worker to take at once."""
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        waiting = len(self._inbox)
        try:
            for tag in list(channel.consumer_tags):
                channel.basic_cancel(tag)  # rejects (requeues) what arrives meanwhile
            while self._inbox:
                delivery = self._inbox.popleft()
                delivery.channel.basic_reject(delivery.method.delivery_tag, requeue=True)
        except AMQPError as error:
            # Closing the connection gives them back all the same.
            logger.warning("consumer %s could not give back its prefetched deliveries: %r", self.name, error)
            return
        logger.info("consumer gave back its prefetched deliveries", extra={"queues": self.name, "count": waiting})

    def _connect(self) -> None:
        self._connection = pika.BlockingConnection(connection_parameters(self.role, name=f"consume:{self.name}"))
        channel = self._connection.channel()
        # Retry and dead-letter copies are confirmed by the broker before the original is acked.
        channel.confirm_delivery()
        for consumer in self.consumers:
            channel.basic_qos(prefetch_count=consumer.prefetch)
            for queue in consumer.consume_from() if consumer.consume_from else [consumer.queue]:
                channel.basic_consume(queue=queue, on_message_callback=self._receiver(consumer, queue))
        self._channel = channel
        if any(consumer.rpc for consumer in self.consumers):
            # RPC replies go on a channel of their own, without publisher confirms (see _reply).
            reply_channel = self._connection.channel()
            reply_channel.add_on_return_callback(_reply_returned)
            self._reply_channel = reply_channel

    def _receiver(
        self, consumer: Handler, queue: str
    ) -> Callable[[BlockingChannel, Any, pika.BasicProperties, bytes], None]:
        def receive(channel: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
            self._inbox.append(Delivery(consumer, channel, method, properties, body, source=queue))

        return receive

    @property
    def _live(self) -> pika.BlockingConnection:
        """The open connection (the loop runs only while there is one)."""
        assert self._connection is not None, "not connected"
        return self._connection

    def _disconnect(self) -> None:
        connection_, self._connection, self._channel = self._connection, None, None
        self._reply_channel = None
        if connection_ is not None and connection_.is_open:
            try:
                connection_.close()
            except AMQPError:
                pass

    def _loop(self) -> None:
        assert self._connection is not None
        while not self._stopping.is_set():
            if self._inbox:
                self._linger(self._inbox[0].consumer)
                if self._stopping.is_set():
                    break  # not started: given back below
                self._handle(self._take_batch())
                self.in_hand = []
            else:
                self._live.process_data_events(time_limit=0.2)
        self._return_prefetched()

    def _linger(self, consumer: Handler) -> None:
        """Let a batch of a consumer that may wait (``linger``) fill up before it is handled."""
        if consumer.linger <= 0 or consumer.rpc or consumer.consume_from or consumer.max_batch <= 1:
            return
        assert self._connection is not None
        deadline = time.monotonic() + consumer.linger
        while not self._stopping.is_set():
            waiting = sum(1 for delivery in self._inbox if delivery.consumer is consumer)
            left = deadline - time.monotonic()
            if waiting >= consumer.max_batch or left <= 0:
                return
            self._live.process_data_events(time_limit=left)

    def _take_batch(self) -> list[Delivery]:
        """The next delivery, plus those already waiting behind it for the same consumer.

        Under load one transaction commits many messages (a commit costs a disk flush);
        when idle, a batch is one message, so nothing waits for a batch to fill. RPC servers
        batch too (a pipelining caller sends many commands at once) but never linger: a
        caller is waiting for every one of them.
        """
        batch = [self._inbox.popleft()]
        consumer = batch[0].consumer
        limit = 1 if consumer.consume_from else consumer.max_batch
        while self._inbox and len(batch) < limit and self._inbox[0].consumer is consumer:
            batch.append(self._inbox.popleft())
        self.in_hand = batch
        return batch

    # --- handling ------------------------------------------------------------------------------

    def _handle(self, deliveries: list[Delivery]) -> None:
        started = time.monotonic()
        consumer = deliveries[0].consumer
        items: list[tuple[Delivery, Message[Any] | None]] = []
        outcomes: dict[int, Outcome] = {}
        enforced = roles.enforced()
        for index, delivery in enumerate(deliveries):
            logger.debug(
                "handling %s %s from %s", delivery.properties.type, delivery.properties.message_id, consumer.queue
            )
            if consumer.consume_from is not None:
                items.append((delivery, None))  # raw consumers take the delivery as it is
                continue
            try:
                check_properties(delivery)
                message = decode(delivery, attempt_of(delivery))
            except MalformedDelivery as error:
                outcomes[index] = Outcome("dead", reason=f"malformed: {error}", error_code="invalid_command")
            except (EnvelopeError, InvalidPayload, LookupError) as error:
                outcomes[index] = Outcome("dead", reason=f"undecodable: {error}", error_code="invalid_command")
            else:
                # Only with roles on: off, nobody is told apart (and this is the hot path).
                refused = roles.refusal(message.envelope.type, self._publisher(delivery)) if enforced else None
                if refused is None:
                    items.append((delivery, message))
                else:
                    outcomes[index] = Outcome("dead", reason=refused, error_code="forbidden")
        if items:
            results = iter(self._run(consumer, items))
            for index in range(len(deliveries)):
                if index not in outcomes:
                    outcomes[index] = next(results)
        elapsed = round((time.monotonic() - started) * 1000, 1)
        bus_metrics.batch(consumer.queue, len(deliveries), elapsed / 1000)
        if self._settle_clean_batch(deliveries, outcomes):
            if logger.isEnabledFor(logging.INFO):
                for delivery in deliveries:
                    self._log_handled(delivery, outcomes[0], attempt_or_first(delivery), len(deliveries), elapsed)
            return
        for index, delivery in enumerate(deliveries):
            outcome = outcomes[index]
            attempt = attempt_or_first(delivery)
            with correlation_context(delivery_correlation_id(delivery)):
                self._settle(delivery, outcome, attempt)
                self.handled += 1
                bus_metrics.settled(consumer.queue, outcome.status)
                self._log_handled(delivery, outcome, attempt, len(deliveries), elapsed)

    def _publisher(self, delivery: Delivery) -> str:
        """Who first published the delivery, as the broker authenticated it (bus/roles.py)."""
        return roles.publisher_of(delivery.properties.user_id, delivery.headers, self.role or "")

    def _log_handled(self, delivery: Delivery, outcome: Outcome, attempt: int, batch: int, elapsed: float) -> None:
        ok = outcome.status in {"ok", "duplicate"}
        if ok and not logger.isEnabledFor(logging.INFO):
            return  # the common case under load: no record to build
        message_type = delivery.properties.type or "-"
        with correlation_context(delivery_correlation_id(delivery)):
            (logger.info if ok else logger.warning)(
                "handled %s",
                message_type,
                extra={
                    "queue": delivery.consumer.queue,
                    "type": message_type,
                    "message_id": delivery.properties.message_id,
                    "outcome": outcome.status,
                    "attempt": attempt,
                    "batch": batch,
                    "ms": elapsed,
                },
            )

    def _run(self, consumer: Handler, items: list[tuple[Delivery, Message[Any] | None]]) -> list[Outcome]:
        """Run the handlers on the worker thread while this thread keeps the connection alive
        (a quick consumer's on this thread, watched for its time-out)."""
        deadline = time.monotonic() + consumer.timeout * len(items)
        if self._on_connection_thread(consumer):
            with self._watchdog.watching(consumer, deadline):
                return self._in_transactions(consumer, items)
        future: Future[list[Outcome]] = self._worker.submit(self._in_transactions, consumer, items)
        connection_ = self._live
        # Wake the pump below the moment the handler is done, instead of at its next tick.
        future.add_done_callback(lambda _: _wake(connection_))
        try:
            while not future.done():
                if time.monotonic() > deadline:
                    _overran(consumer)
                # Keep heartbeats flowing (and take in new deliveries) while the handler works.
                self._live.process_data_events(time_limit=1.0)
        except AMQPError:
            future.result()  # let the handler finish; its messages come back and are deduplicated
            raise
        return future.result()

    def _on_connection_thread(self, consumer: Handler) -> bool:
        """Whether ``consumer``'s batches run on the connection's thread (a quick consumer's)."""
        return consumer.quick

    def _in_transactions(self, consumer: Handler, items: list[tuple[Delivery, Message[Any] | None]]) -> list[Outcome]:
        """On the handler thread, or a quick consumer's on the connection's (bus/handling.py)."""
        return in_transactions(consumer, items)


def _overran(consumer: Handler) -> None:
    logger.error(
        "handler of %s overran its %.0f s timeout; exiting so the message is handed out again",
        consumer.queue,
        consumer.timeout,
    )
    logging.shutdown()
    os._exit(EXIT_HANDLER_TIMEOUT)


class _Watchdog:
    """Ends the process when a quick consumer's batch, run on the connection's thread, overruns
    its time-out (as the connection's thread does for a batch on the handler thread). One
    thread, started with the first quick batch, looking once a second."""

    def __init__(self) -> None:
        self._watched: tuple[Handler, float] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @contextmanager
    def watching(self, consumer: Handler, deadline: float) -> Iterator[None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="handler-watchdog", daemon=True)
            self._thread.start()
        self._watched = (consumer, deadline)
        try:
            yield
        finally:
            self._watched = None

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(1.0):
            watched = self._watched
            if watched is not None and time.monotonic() > watched[1]:
                _overran(watched[0])
