"""The outbox relay: publishes committed outbox rows with pipelined publisher confirms.

One cycle: claim up to ``batch_size`` unsent rows with ``SELECT … FOR UPDATE SKIP LOCKED``
(other relay copies skip them), publish them all on one confirm-mode channel without waiting
in between, and when the broker has confirmed every one, mark the confirmed rows sent and
commit. The claim's transaction stays open while the batch is in flight, so the row locks
keep other copies off it; if anything fails the transaction rolls back and the rows go out
again later (at-least-once: consumers deduplicate by message id).

Per-aggregate order: an order's messages leave in the order they were written. One channel
keeps publish order; across copies, a batch drops every aggregate that has an earlier unsent
row it did not claim (held by another copy, or waiting after a failure).

pika's SelectConnection drives the cycle from callbacks; all database work happens on the
same (only) thread, between I/O events, so Django's connection is used safely.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import pika
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Min
from django.utils import timezone
from pika.exceptions import AMQPError
from pika.spec import Basic

from bus.connection import connection_parameters, message_properties
from bus.models import OutboxMessage
from bus.topology import EXCHANGE_NAMES, declare_topology

logger = logging.getLogger(__name__)

# Between tries of a message the broker returned or refused: 2 s, 4 s, … up to 5 minutes.
RETRY_BASE_SECONDS = 2
RETRY_MAX_SECONDS = 300
# Rows with this many failed tries are shown to operators as stuck (admin filter).
STUCK_AFTER_ATTEMPTS = 10


def _mark_sent(ids: list[int], now: datetime) -> None:
    # Plain SQL: the ORM's per-parameter preparation of a 500-id IN list shows in profiles.
    table = OutboxMessage._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            cursor.execute(
                f"UPDATE {table} SET sent_at = %s WHERE id IN ({', '.join(['%s'] * len(chunk))})",
                [now.replace(tzinfo=None), *chunk],
            )


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


class Row(NamedTuple):
    """An outbox row as the relay needs it (tuples: no model instances on the hot path)."""

    id: int
    message_id: str
    type: str
    exchange: str
    routing_key: str
    aggregate: str
    correlation_id: str
    body: str
    priority: int
    created_at: datetime
    attempts: int


@dataclass
class Batch:
    rows: list[Row]
    started: float = field(default_factory=time.monotonic)
    pending: dict[int, Row] = field(default_factory=dict)  # delivery tag -> row
    acked: list[Row] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # row id -> reason
    returned: dict[str, str] = field(default_factory=dict)  # message id -> reason


class OutboxRelay:
    def __init__(
        self, *, batch_size: int = 500, idle_interval: float = 0.02, confirm_timeout: float = 30.0,
        max_reconnect_delay: float = 10.0,
    ):
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.confirm_timeout = confirm_timeout
        self.max_reconnect_delay = max_reconnect_delay
        self.published = 0  # confirmed and marked sent, since start
        self._stopping = threading.Event()
        self._connection: pika.SelectConnection | None = None
        self._channel = None
        self._batch: Batch | None = None
        self._next_tag = 0
        self._timer = None
        self._confirm_timer = None
        self._was_open = False

    # --- life cycle --------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Relay until stopped (SIGTERM/SIGINT), reconnecting with back-off after broker loss."""
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        delay = 0.5
        while not self._stopping.is_set():
            self._was_open = False
            try:
                declare_topology()
                self._connection = pika.SelectConnection(
                    connection_parameters("relay"),
                    on_open_callback=self._on_connection_open,
                    on_open_error_callback=self._on_connection_error,
                    on_close_callback=self._on_connection_closed,
                )
                self._connection.ioloop.start()
            except AMQPError as error:
                logger.warning("relay cannot reach RabbitMQ: %r", error)
            except Exception:  # noqa: BLE001 - whatever broke, the relay must come back
                logger.exception("relay connection failed")
            self._abort_batch()
            if self._stopping.is_set():
                break
            if self._was_open:
                delay = 0.5  # it was working until just now: try again soon
            logger.warning("relay reconnecting in %.1f s", delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, self.max_reconnect_delay)
        logger.info("relay stopped", extra={"published": self.published})

    def stop(self) -> None:
        """Finish the batch in flight, then close. Safe from a signal handler or another thread."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.ioloop.add_callback_threadsafe(self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        if self._batch is None:
            self._close()

    def _close(self) -> None:
        if self._timer is not None and self._connection is not None:
            self._connection.ioloop.remove_timeout(self._timer)
            self._timer = None
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        elif self._connection is not None and not self._connection.is_closing:
            self._connection.ioloop.stop()

    # --- connection callbacks --------------------------------------------------------------

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        self._was_open = True
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: pika.SelectConnection, error: BaseException) -> None:
        self._was_open = False
        logger.warning("relay cannot connect to RabbitMQ: %s", error)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        if not self._stopping.is_set():
            logger.warning("relay lost its RabbitMQ connection: %s", reason)
        connection.ioloop.stop()

    def _on_channel_open(self, channel) -> None:  # type: ignore[no-untyped-def]
        self._channel = channel
        self._next_tag = 0
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._schedule(0))

    def _on_channel_closed(self, channel, reason: BaseException) -> None:  # type: ignore[no-untyped-def]
        if not self._stopping.is_set():
            logger.warning("relay channel closed: %s", reason)
        self._close()

    # --- the cycle ---------------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if self._connection is not None and self._connection.is_open:
            self._timer = self._connection.ioloop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._stopping.is_set():
            self._close()
            return
        try:
            rows = self._claim()
        except DatabaseError:
            logger.exception("relay cannot read the outbox")
            self._abort_batch()
            self._schedule(1.0)
            return
        if not rows:
            self._schedule(self.idle_interval)
            return
        self._publish(rows)

    def _claim(self) -> list[Row]:
        close_old_connections()
        transaction.set_autocommit(False)
        try:
            rows = [
                Row._make(values)
                for values in OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(sent_at__isnull=True, available_at__lte=timezone.now())
                .order_by("id")
                .values_list(*Row._fields)[: self.batch_size]
            ]
            rows = self._in_aggregate_order(rows)
        except BaseException:
            transaction.rollback()
            transaction.set_autocommit(True)
            raise
        if not rows:
            transaction.commit()
            transaction.set_autocommit(True)
        return rows

    @staticmethod
    def _in_aggregate_order(rows: list[Row]) -> list[Row]:
        """Drop aggregates whose earliest unsent message is not in this batch."""
        first_claimed: dict[str, int] = {}
        for row in rows:
            first_claimed.setdefault(row.aggregate, row.id)
        earliest = dict(
            OutboxMessage.objects.filter(aggregate__in=list(first_claimed), sent_at__isnull=True)
            .values("aggregate")
            .annotate(first=Min("id"))
            .values_list("aggregate", "first")
        )
        blocked = {agg for agg, first in first_claimed.items() if earliest.get(agg, first) < first}
        return [row for row in rows if row.aggregate not in blocked]

    def _publish(self, rows: list[Row]) -> None:
        batch = self._batch = Batch(rows=rows)
        for row in rows:
            if row.exchange not in EXCHANGE_NAMES:
                # Publishing to an undeclared exchange would close the channel and stall the
                # relay on this row forever; keep it aside for an operator instead.
                batch.failed[row.id] = f"unknown exchange {row.exchange!r}"
                continue
            self._next_tag += 1
            batch.pending[self._next_tag] = row
            self._channel.basic_publish(
                exchange=row.exchange,
                routing_key=row.routing_key,
                body=row.body.encode(),
                properties=message_properties(
                    message_id=row.message_id, type=row.type, correlation_id=row.correlation_id,
                    timestamp=int(row.created_at.timestamp()), priority=row.priority,
                ),
                mandatory=True,
            )
        if not batch.pending:
            self._finish()
            return
        self._confirm_timer = self._connection.ioloop.call_later(self.confirm_timeout, self._on_confirm_timeout)

    def _on_return(self, channel, method: Basic.Return, properties: pika.BasicProperties, body: bytes) -> None:  # type: ignore[no-untyped-def]
        # The broker returns an unroutable mandatory message before it confirms it.
        if self._batch is not None and properties.message_id:
            self._batch.returned[properties.message_id] = (
                f"unroutable: {method.reply_text} (exchange {method.exchange!r}, key {method.routing_key!r})"
            )

    def _on_confirm(self, frame) -> None:  # type: ignore[no-untyped-def]
        batch = self._batch
        if batch is None:
            return
        method = frame.method
        tags = [t for t in batch.pending if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        for tag in tags:
            row = batch.pending.pop(tag, None)
            if row is None:
                continue
            if isinstance(method, Basic.Ack):
                batch.acked.append(row)
            else:
                batch.failed[row.id] = "refused by the broker (nack)"
        if not batch.pending:
            self._finish()

    def _on_confirm_timeout(self) -> None:
        self._confirm_timer = None
        logger.warning("relay: the broker did not confirm a batch within %.0f s; reconnecting", self.confirm_timeout)
        self._close()

    def _finish(self) -> None:
        batch = self._batch
        assert batch is not None
        if self._confirm_timer is not None:
            self._connection.ioloop.remove_timeout(self._confirm_timer)
            self._confirm_timer = None
        now = timezone.now()
        sent = [row.id for row in batch.acked if row.message_id not in batch.returned]
        for row in batch.acked:
            if row.message_id in batch.returned:
                batch.failed[row.id] = batch.returned[row.message_id]
        try:
            _mark_sent(sent, now)
            by_id = {row.id: row for row in batch.rows}
            for row_id, reason in batch.failed.items():
                row = by_id[row_id]
                logger.error(
                    "relay could not deliver %s %s: %s", row.type, row.message_id, reason,
                    extra={"attempts": row.attempts + 1, "correlation_id": row.correlation_id},
                )
                OutboxMessage.objects.filter(id=row_id).update(
                    attempts=row.attempts + 1, last_error=reason[:2000], available_at=now + retry_delay(row.attempts + 1)
                )
            transaction.commit()
        except DatabaseError:
            logger.exception("relay could not mark a confirmed batch sent; it will be published again")
            self._abort_batch()
            self._schedule(1.0)
            return
        transaction.set_autocommit(True)
        self.published += len(sent)
        full = len(batch.rows) >= self.batch_size
        logger.info(
            "relay published %d messages", len(sent),
            extra={"published": len(sent), "failed": len(batch.failed),
                   "ms": round((time.monotonic() - batch.started) * 1000, 1)},
        )
        self._batch = None
        if self._stopping.is_set():
            self._close()
        else:
            self._schedule(0 if full else self.idle_interval)

    def _abort_batch(self) -> None:
        """Forget the batch in flight and roll back its claim: its rows go out again later."""
        self._batch = None
        if self._confirm_timer is not None and self._connection is not None:
            try:
                self._connection.ioloop.remove_timeout(self._confirm_timer)
            except Exception:  # noqa: BLE001 - the loop may be gone already
                pass
        self._confirm_timer = None
        try:
            if not transaction.get_autocommit():
                transaction.rollback()
                transaction.set_autocommit(True)
        except DatabaseError:
            logger.warning("relay: rollback failed; closing the database connection")
            connection.close()
