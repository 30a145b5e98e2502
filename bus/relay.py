"""The outbox relay: publishes committed outbox rows with pipelined publisher confirms.

The relay works in epochs, each one database transaction. In an epoch it takes up to
``batches_per_epoch`` batches of up to ``batch_size`` unsent rows with
``SELECT … FOR UPDATE SKIP LOCKED`` (other relay copies skip the rows it holds), publishes
each batch with ``mandatory`` on one confirm-mode channel without waiting in between, and
claims the next batch while the broker confirms the last (persisting and confirming a burst
takes the broker tens of milliseconds: quorum queues confirm after their log is flushed).
As each batch is confirmed its rows are marked sent; when nothing is in flight the epoch
commits. Row locks are held only by the open transaction, so a relay that dies releases
them the moment its database connection drops, and its unsent rows go out again at once
(at-least-once: consumers deduplicate by message id). A rolled-back transaction never wrote
its rows, so it never publishes.

Per-aggregate order: an order's messages leave in the order they were written. One channel
keeps publish order; a batch drops every aggregate whose earliest unsent row is neither in it
nor already in flight on this relay (held by another copy, or waiting after a failure).

pika's SelectConnection drives the cycle from callbacks; all database work happens on the
same (only) thread, between I/O events, so Django's connection is used safely.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pika
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from pika.channel import Channel
from pika.exceptions import AMQPError
from pika.spec import Basic

from bus import metrics as bus_metrics
from bus import registry, roles, shutdown
from bus.connection import broker_urls, message_properties, node_name, node_parameters, nodes_in_turn
from bus.handlers import registered
from bus.models import OutboxMessage
from bus.nudge import listen
from bus.topology import EXCHANGE_NAMES, declare_topology

logger = logging.getLogger(__name__)

# Between tries of a message the broker returned (unroutable) or the relay kept back (an
# unknown exchange): 2 s, 4 s, … up to 5 minutes. Only an operator's fix makes those go.
RETRY_BASE_SECONDS = 2
RETRY_MAX_SECONDS = 300
# Between tries of messages the broker refused (nack): 0.25 s doubling to 30 s per route, and
# over at the route's first confirm (see Refusals).
REFUSED_BASE_SECONDS = 0.25
REFUSED_MAX_SECONDS = 30.0
# Seconds a connection whose broker stopped confirming may take to close before it is left.
CLOSE_GRACE_SECONDS = 5.0
# Rows with this many failed tries are shown to operators as stuck (admin filter).
STUCK_AFTER_ATTEMPTS = 10
TABLE = OutboxMessage._meta.db_table
REFUSED = "refused by the broker (nack)"  # a refused row's last_error


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


Route = tuple[str, str]  # (exchange, routing key): the queues a message reaches


class Refusals:
    """How long messages the broker refused (nack) wait before they are tried again, per route.

    A nack is the broker refusing for now — a quorum queue between leaders, a full queue — not a
    fault of the message, and every message to the same route meets it alike. So the pause
    belongs to the route, not to each row (a row's own growing back-off left rows refused during
    a leader change waiting up to minutes after the new leader took publishes): it doubles with
    each round the route is refused again after its pause, from ``base`` up to ``cap``, so a
    broker that keeps refusing is asked every ``cap`` seconds at most; and the route's first
    confirmed publish (a new message, or a refused one whose pause ended) ends it, handing back
    the rows held for it to be tried at once.

    Pure bookkeeping (the relay writes the rows' ``available_at``); ``now`` is monotonic seconds.
    """

    def __init__(self, *, base: float = REFUSED_BASE_SECONDS, cap: float = REFUSED_MAX_SECONDS) -> None:
        self.base = base
        self.cap = cap
        self._top = max(0, math.ceil(math.log2(cap / base)))  # the first level whose pause is the cap
        self._level: dict[Route, int] = {}
        self._until: dict[Route, float] = {}  # when the route's current pause ends
        self._held: dict[Route, set[int]] = {}

    def refused(self, route: Route, row_ids: Iterable[int], *, now: float) -> float:
        """The broker refused these rows: the seconds they wait. Refusals within one pause are
        one round; a refusal after the pause ended (the broker still refuses) doubles it."""
        level = self._level.get(route)
        if level is None or now >= self._until[route]:
            # A new round; its end is not pushed back by refusals within it (new messages
            # refused one by one would otherwise keep the pause from ever growing).
            level = 0 if level is None else min(level + 1, self._top)
            self._level[route] = level
            self._until[route] = now + min(self.base * 2.0**level, self.cap)
        pause = min(self.base * 2.0**level, self.cap)
        self._held.setdefault(route, set()).update(row_ids)
        return pause

    def accepted(self, route: Route) -> set[int]:
        """The broker confirmed a publish to ``route``: its back-off starts over; the ids of the
        rows held for it, to be tried now."""
        self._level.pop(route, None)
        self._until.pop(route, None)
        return self._held.pop(route, set())

    def any(self) -> bool:
        """Whether some route is refused now (else a confirm has nothing to end)."""
        return bool(self._level)


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
    pending: set[int] = field(default_factory=set)  # delivery tags not yet confirmed
    sent: list[int] = field(default_factory=list)  # row ids confirmed
    refused: list[int] = field(default_factory=list)  # row ids the broker nacked
    failed: dict[int, str] = field(default_factory=dict)  # row id -> reason


_TABLE = OutboxMessage._meta.db_table
# The next unsent rows, locked, skipping those another relay holds (Row's fields, in order).
_CLAIM = (
    f"SELECT {', '.join(Row._fields)} FROM {_TABLE} WHERE sent_at IS NULL AND available_at <= %s{{after}}"
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)


_CREATED_AT = Row._fields.index("created_at")


def _aware_created_at(values: tuple[object, ...]) -> tuple[object, ...]:
    """A claimed row's values with ``created_at`` in UTC (plain SQL returns it without a zone)."""
    created_at = values[_CREATED_AT]
    if isinstance(created_at, datetime) and created_at.tzinfo is None:
        return (*values[:_CREATED_AT], created_at.replace(tzinfo=UTC), *values[_CREATED_AT + 1 :])
    return values


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)  # the database keeps UTC without a zone


# Which of the given rows are still unsent and not claimed by another relay copy (locked).
UNCLAIMED_SQL = f"SELECT id FROM {TABLE} WHERE id IN ({{ids}}) AND sent_at IS NULL FOR UPDATE SKIP LOCKED"


def _execute_in(sql: str, head: list[Any], ids: list[int]) -> None:
    # Plain SQL: the ORM's per-parameter preparation of a 500-id IN list shows in profiles.
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            cursor.execute(sql.format(ids=", ".join(["%s"] * len(chunk))), [*head, *chunk])


class OutboxRelay:
    def __init__(
        self,
        *,
        batch_size: int = 500,
        batches_per_epoch: int = 4,
        idle_interval: float = 0.01,
        confirm_timeout: float = 10.0,
        max_reconnect_delay: float = 10.0,
        nudge_delay: float = 0.01,
        refused_pause: tuple[float, float] = (REFUSED_BASE_SECONDS, REFUSED_MAX_SECONDS),
    ):
        self.batch_size = batch_size
        # A nudge claims this much later, not at once: the commits of a few milliseconds (an
        # order's placement, its charge, the notifier's plan) share one claim, one publish
        # round and one commit of the relay instead of one each.
        self.nudge_delay = nudge_delay
        self.batches_per_epoch = batches_per_epoch
        self.idle_interval = idle_interval
        self.confirm_timeout = confirm_timeout
        self.max_reconnect_delay = max_reconnect_delay
        self.published = 0  # confirmed and marked sent, since start
        base, cap = refused_pause
        self._refusals = Refusals(base=base, cap=cap)
        self._stopping = threading.Event()
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._in_flight: deque[Batch] = deque()
        self._epoch_batches = 0  # batches claimed in the open transaction; 0: none open
        self._tags: dict[int, tuple[Batch, Row]] = {}  # delivery tag -> its batch and row
        self._returned: dict[str, str] = {}  # message id -> why the broker returned it
        self._next_tag = 0
        self._timer: Any = None
        self._timer_due = 0.0  # when self._timer fires (monotonic)
        self._confirm_timer: Any = None
        self._was_open = False
        self._nudged = False  # a writer committed rows since the last claim (bus/nudge.py)
        self._more = False  # the last claim read a full batch: more rows may wait
        self.claims = 0  # claims so far (SELECT … FOR UPDATE SKIP LOCKED), found rows or not
        self._user = ""  # the RabbitMQ user the relay publishes as (every message's user_id)
        self._work_queues = frozenset(c.queue for c in registered().values() if c.consume_from is None)

    # --- life cycle --------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Relay until stopped (SIGTERM/SIGINT), reconnecting with back-off after broker loss.

        SIGTERM: claim nothing more, wait for the confirms of what is in flight and mark it sent,
        then close; a second signal, or ``STOP_GRACE_SECONDS``, exits at once (bus/shutdown.py):
        the open epoch rolls back with the lost connection and its rows go out again."""
        if install_signal_handlers:
            shutdown.on_stop_signals(self.stop, name="relay")
        # Writers nudge the relay after they commit (bus/nudge.py): it publishes at once and
        # polls only as a fallback.
        threading.Thread(target=listen, args=(self._nudge, self._stopping), name="relay-nudges", daemon=True).start()
        heartbeat = registry.relay_heartbeat(self)  # the worker registry (bus/registry.py)
        delay = 0.5
        # The broker's nodes, in this relay's order (bus/connection.py): a node that fails is
        # followed by the next one at once; only a whole round of failures backs off.
        nodes: list[str] = []
        failed_in_a_row = 0
        while not self._stopping.is_set():
            self._was_open = False
            if not nodes:
                nodes = nodes_in_turn()
            url = nodes.pop(0)
            try:
                if not roles.enforced():
                    # With roles, the topology role declares it (the relay may configure nothing).
                    # Through the node the relay is about to use: a dead one costs one wait.
                    declare_topology(url=url)
                self._user = roles.user(roles.RELAY)
                self._connection = pika.SelectConnection(
                    node_parameters(url, roles.RELAY),
                    on_open_callback=self._on_connection_open,
                    on_open_error_callback=self._on_connection_error,
                    on_close_callback=self._on_connection_closed,
                )
                self._connection.ioloop.start()
            except AMQPError as error:
                logger.warning("relay cannot reach RabbitMQ at %s: %r", node_name(url), error)
            except Exception:
                logger.exception("relay connection failed")
            self._abandon_in_flight()
            if self._stopping.is_set():
                break
            if self._was_open:
                delay = 0.5  # it was working until just now: try again soon
                failed_in_a_row = 0
            else:
                failed_in_a_row += 1
            cluster = len(broker_urls())
            if cluster > 1 and (self._was_open or failed_in_a_row % cluster):
                pause = 0.1  # another node may well be up: try it now
            else:
                pause = delay
                delay = min(delay * 2, self.max_reconnect_delay)
            logger.warning("relay reconnecting in %.1f s", pause)
            self._stopping.wait(pause)
        heartbeat.stop()
        logger.info("relay stopped", extra={"published": self.published, "claims": self.claims})

    def stop(self) -> None:
        """Finish the batches in flight, then close. Safe from a signal handler or another thread."""
        self._stopping.set()
        connection_ = self._connection
        if connection_ is not None:
            connection_.ioloop.add_callback_threadsafe(self._stop_if_idle)

    def _nudge(self) -> None:
        """From the listener thread: new rows have committed."""
        connection_ = self._connection
        if connection_ is not None:
            try:
                connection_.ioloop.add_callback_threadsafe(self._poll_now)
            except Exception:  # noqa: BLE001 - a closing connection: its next poll takes the rows
                pass

    def _poll_now(self) -> None:
        self._nudged = True
        self._wake_if_idle()

    def _wake_if_idle(self, delay: float | None = None) -> None:
        """Claim ``delay`` from now (the nudge delay) instead of at the poll timer, if rows were
        nudged in since the last claim. Mid-epoch the confirms drive the cycle; this runs again
        when the epoch ends."""
        delay = self.nudge_delay if delay is None else delay
        if self._nudged and self._timer is not None and not self._epoch_batches and self._connection is not None:
            if self._timer_due <= time.monotonic() + delay:
                return  # the claim already due soon takes these rows: never push it back
            self._connection.ioloop.remove_timeout(self._timer)
            self._timer = None
            self._schedule(delay)

    def _stop_if_idle(self) -> None:
        if not self._in_flight:
            self._close()

    def _close(self) -> None:
        if self._connection is None:
            return
        for timer in (self._timer, self._confirm_timer):
            if timer is not None:
                self._connection.ioloop.remove_timeout(timer)
        self._timer = self._confirm_timer = None
        if self._connection.is_open:
            self._connection.close()
        elif not self._connection.is_closing:
            self._connection.ioloop.stop()

    # --- connection callbacks --------------------------------------------------------------

    def _on_connection_open(self, connection_: pika.SelectConnection) -> None:
        self._was_open = True
        logger.info("relay connected to RabbitMQ at %s:%s", connection_.params.host, connection_.params.port)
        connection_.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection_: pika.SelectConnection, error: BaseException) -> None:
        logger.warning(
            "relay cannot connect to RabbitMQ at %s:%s: %s", connection_.params.host, connection_.params.port, error
        )
        connection_.ioloop.stop()

    def _on_connection_closed(self, connection_: pika.SelectConnection, reason: BaseException) -> None:
        if not self._stopping.is_set():
            logger.warning("relay lost its RabbitMQ connection: %s", reason)
        connection_.ioloop.stop()

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
        if self._connection is not None and self._connection.is_open and self._timer is None:
            self._timer = self._connection.ioloop.call_later(delay, self._tick)
            self._timer_due = time.monotonic() + delay

    def _tick(self) -> None:
        self._timer = None
        # This claim sees every row committed before it; a nudge from here on is for a later one.
        self._nudged = False
        if self._stopping.is_set():
            self._stop_if_idle()
            return
        if self._epoch_batches >= self.batches_per_epoch:
            return  # the epoch drains; its commit schedules the next tick
        try:
            rows = self._claim()
        except DatabaseError:
            logger.exception("relay cannot read the outbox")
            self._end_epoch(commit=False)
            self._schedule(1.0)
            return
        if rows:
            self._publish(rows)
            # Claim the next batch while the broker confirms this one.
            self._schedule(0 if self._more else self.idle_interval)
        elif not self._in_flight:
            self._end_epoch(commit=True)
            self._schedule(self.idle_interval)

    def _claim(self) -> list[Row]:
        """Lock the next unsent rows in the epoch's transaction (opening it if need be)."""
        if not self._epoch_batches:
            close_old_connections()
            transaction.set_autocommit(False)
        self._epoch_batches += 1
        params: list[Any] = [_naive(timezone.now())]
        after = ""
        if self._in_flight:
            # Rows this transaction already holds are not skipped by SKIP LOCKED: leave out
            # the ones in flight (a lower id that commits late is taken in a later epoch).
            after = " AND id > %s"
            params.append(self._in_flight[-1].rows[-1].id)
        # Plain SQL on the hot path (as for marking rows sent): at a few hundred claims a
        # second, compiling the ORM's query was a large share of the relay's CPU.
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM.format(after=after), [*params, self.batch_size])
            rows = [Row._make(_aware_created_at(values)) for values in cursor.fetchall()]
        self.claims += 1
        kept = self._in_aggregate_order(rows)
        # Rows past a full batch wait: claim again as soon as this batch allows. Rows read and
        # left for later (behind another copy's) go after this epoch, as if nudged (no nudge of
        # theirs will come again).
        self._more = len(rows) >= self.batch_size
        if len(kept) < len(rows):
            self._nudged = True
        return kept

    def _in_aggregate_order(self, rows: list[Row]) -> list[Row]:
        """Keep, of each aggregate, only the rows before its first unsent row that is neither in
        this batch nor in flight here (none, when that row comes before all of them).

        Two relays claiming at once can interleave their SKIP LOCKED scans and each lock every
        other row of one aggregate; publishing past such a gap would overtake the rows the other
        relay holds. The rows left out stay locked until this epoch ends, then go in order.
        """
        if not rows:
            return rows
        aggregates = list(dict.fromkeys(row.aggregate for row in rows))
        mine = [row.id for row in rows] + [row.id for batch in self._in_flight for row in batch.rows]
        sql = (
            f"SELECT aggregate, MIN(id) FROM {_TABLE} WHERE sent_at IS NULL"
            f" AND aggregate IN ({', '.join(['%s'] * len(aggregates))})"
            f" AND id NOT IN ({', '.join(['%s'] * len(mine))}) GROUP BY aggregate"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*aggregates, *mine])
            gap = dict(cursor.fetchall())
        return [row for row in rows if row.aggregate not in gap or row.id < gap[row.aggregate]]

    def _publish(self, rows: list[Row]) -> None:
        assert self._channel is not None and self._connection is not None, "publishing needs the open channel"
        channel, connection_ = self._channel, self._connection
        batch = Batch(rows=rows)
        self._in_flight.append(batch)
        for row in rows:
            if row.exchange not in EXCHANGE_NAMES:
                # Publishing to an undeclared exchange would close the channel and stall the
                # relay on this row forever; keep it aside for an operator instead.
                batch.failed[row.id] = f"unknown exchange {row.exchange!r}"
                continue
            if not row.exchange and row.routing_key not in self._work_queues:
                # The default exchange (a replay) reaches any queue: only a consumer's own.
                batch.failed[row.id] = f"a replay into {row.routing_key!r}, which is no consumer's queue"
                continue
            self._next_tag += 1
            batch.pending.add(self._next_tag)
            self._tags[self._next_tag] = (batch, row)
            channel.basic_publish(
                exchange=row.exchange,
                routing_key=row.routing_key,
                body=row.body.encode(),
                properties=message_properties(
                    message_id=row.message_id,
                    type=row.type,
                    correlation_id=row.correlation_id,
                    timestamp=int(row.created_at.timestamp()),
                    priority=row.priority,
                    user_id=self._user,
                ),
                mandatory=True,
            )
        if self._confirm_timer is None:
            self._confirm_timer = connection_.ioloop.call_later(self.confirm_timeout, self._on_confirm_timeout)
        self._finish_confirmed()

    def _on_return(self, channel, method: Basic.Return, properties: pika.BasicProperties, body: bytes) -> None:  # type: ignore[no-untyped-def]
        # The broker returns an unroutable mandatory message before it confirms it.
        if properties.message_id:
            self._returned[properties.message_id] = (
                f"unroutable: {method.reply_text} (exchange {method.exchange!r}, key {method.routing_key!r})"
            )

    def _on_confirm(self, frame) -> None:  # type: ignore[no-untyped-def]
        method = frame.method
        tags = [t for t in self._tags if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        for tag in tags:
            entry = self._tags.pop(tag, None)
            if entry is None:
                continue
            batch, row = entry
            batch.pending.discard(tag)
            reason = self._returned.pop(row.message_id, None)
            if reason is not None:
                batch.failed[row.id] = reason
            elif isinstance(method, Basic.Ack):
                batch.sent.append(row.id)
            else:
                batch.refused.append(row.id)
        self._finish_confirmed()

    def _on_confirm_timeout(self) -> None:
        self._confirm_timer = None
        if self._in_flight:
            logger.warning("relay: the broker did not confirm within %.0f s; reconnecting", self.confirm_timeout)
            connection_ = self._connection
            self._close()
            if connection_ is not None and not connection_.is_closed:
                # A node that froze (or sits across a partition) never answers the close either;
                # heartbeats would notice only after two intervals. Leave it after a grace period:
                # the unconfirmed rows go out again from the outbox, to the next node.
                connection_.ioloop.call_later(CLOSE_GRACE_SECONDS, connection_.ioloop.stop)

    def _finish_confirmed(self) -> None:
        """Record every fully confirmed batch at the head of the queue, oldest first."""
        while self._in_flight and not self._in_flight[0].pending:
            batch = self._in_flight.popleft()
            try:
                self._record(batch)
            except DatabaseError:
                logger.exception("relay could not mark a confirmed batch sent; it will be published again")
                self._abandon_in_flight()
                return
        if not self._in_flight and self._epoch_batches:
            try:
                self._end_epoch(commit=True)
            except DatabaseError:
                logger.exception("relay could not commit; the epoch's messages will be published again")
        assert self._connection is not None, "confirms come on the open connection"
        ioloop = self._connection.ioloop
        if self._confirm_timer is not None:
            ioloop.remove_timeout(self._confirm_timer)
            self._confirm_timer = None
        if self._in_flight:
            self._confirm_timer = ioloop.call_later(self.confirm_timeout, self._on_confirm_timeout)
        if self._stopping.is_set():
            self._stop_if_idle()
        else:
            # At once only when rows are known to wait: after a claim that found fewer than a
            # batch, claiming again would find nothing but what a nudge announces. A nudge that
            # came while the broker confirmed has waited its delay already: its rows go at once.
            self._schedule(0 if self._more else self.idle_interval)
            self._wake_if_idle(0)

    def _record(self, batch: Batch) -> None:
        """Mark a confirmed batch, inside the epoch's transaction."""
        now = timezone.now()
        by_id = {row.id: row for row in batch.rows}
        if batch.sent:
            _execute_in(f"UPDATE {TABLE} SET sent_at = %s WHERE id IN ({{ids}})", [_naive(now)], batch.sent)
            if self._refusals.any():
                for route in {(by_id[row_id].exchange, by_id[row_id].routing_key) for row_id in batch.sent}:
                    self._release(route, now)
        if batch.refused:
            self._hold_refused([by_id[row_id] for row_id in batch.refused], now)
        for row_id, reason in batch.failed.items():
            row = by_id[row_id]
            logger.error(
                "relay could not deliver %s %s: %s",
                row.type,
                row.message_id,
                reason,
                extra={"attempts": row.attempts + 1, "correlation_id": row.correlation_id},
            )
            OutboxMessage.objects.filter(id=row_id).update(
                attempts=row.attempts + 1, last_error=reason[:2000], available_at=now + retry_delay(row.attempts + 1)
            )
        self.published += len(batch.sent)
        failed = len(batch.failed) + len(batch.refused)
        bus_metrics.relayed(len(batch.sent), failed, time.monotonic() - batch.started)
        logger.info(
            "relay published %d messages",
            len(batch.sent),
            extra={
                "published": len(batch.sent),
                "failed": failed,
                "ms": round((time.monotonic() - batch.started) * 1000, 1),
            },
        )

    def _hold_refused(self, rows: list[Row], now: datetime) -> None:
        """Keep rows the broker refused (nack) for their route's pause, or its next confirm."""
        by_route: dict[Route, list[Row]] = {}
        for row in rows:
            by_route.setdefault((row.exchange, row.routing_key), []).append(row)
        for route, refused in by_route.items():
            ids = [row.id for row in refused]
            pause = self._refusals.refused(route, ids, now=time.monotonic())
            # One line per route and batch: a leader change refuses hundreds at once.
            logger.warning(
                "relay: the broker refused %d messages to %r %r (nack); trying again in %.2f s or at"
                " the route's next confirm",
                len(ids),
                *route,
                pause,
                extra={"refused": len(ids), "first_message_id": refused[0].message_id},
            )
            _execute_in(
                f"UPDATE {TABLE} SET attempts = attempts + 1, last_error = %s, available_at = %s WHERE id IN ({{ids}})",
                [REFUSED, _naive(now + timedelta(seconds=pause))],
                ids,
            )

    def _release(self, route: Route, now: datetime) -> None:
        """The broker confirmed a publish to ``route``: the rows held back for its refusals go now."""
        held = sorted(self._refusals.accepted(route))
        if not held:
            return
        # Rows another relay copy has claimed meanwhile are its to publish: skip them, never wait
        # for its epoch on this (the only) thread.
        released = 0
        with connection.cursor() as cursor:
            for start in range(0, len(held), 1000):
                chunk = held[start : start + 1000]
                cursor.execute(UNCLAIMED_SQL.format(ids=", ".join(["%s"] * len(chunk))), chunk)
                ids = [row_id for (row_id,) in cursor.fetchall()]
                released += len(ids)
                if ids:
                    _execute_in(f"UPDATE {TABLE} SET available_at = %s WHERE id IN ({{ids}})", [_naive(now)], ids)
        logger.info("relay: the broker takes %r %r again; %d refused messages go now", *route, released)

    def _end_epoch(self, *, commit: bool) -> None:
        if not self._epoch_batches:
            return
        self._epoch_batches = 0
        try:
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
            transaction.set_autocommit(True)
        except DatabaseError:
            connection.close()  # the next epoch starts on a new connection
            raise

    def _abandon_in_flight(self) -> None:
        """Forget what is in flight and roll the epoch back: its rows go out again."""
        self._in_flight.clear()
        self._tags.clear()
        self._returned.clear()
        self._confirm_timer = None
        self._timer = None
        try:
            self._end_epoch(commit=False)
        except DatabaseError:
            logger.warning("relay: rollback failed; the connection was closed")
