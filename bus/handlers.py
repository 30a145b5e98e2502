"""Declaring a worker's handlers, by kind: a queue, what it is bound to, a handler, its limits.

    billing_order_placed = register(EventHandler(
        queue="billing.order_placed", events=[ORDER_PLACED], handler=charge, batch_handler=charge_many,
    ))
    balance_commands = register(RpcServer(queue="balance.commands", events=[BALANCE_DEBIT], handler=serve))

The runner (bus/runner.py) owns everything else: connection, prefetch, decoding and payload
validation, correlation context, idempotency, ack after commit, retries, dead letters,
heartbeats and graceful shutdown. A handler receives a :class:`Message` and runs inside the
database transaction that also records the message id, so its effect happens once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from django.conf import settings
from pydantic import BaseModel

from bus.catalog import EventType
from bus.envelope import Envelope

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class Message(Generic[P]):
    """What a handler gets: the envelope, its validated payload, and delivery facts.

    ``Message[OrderPlaced]`` in a handler's signature types its payload; the runner validated
    it against the event's schema (a bare ``Message`` leaves the payload untyped)."""

    envelope: Envelope
    payload: P
    event: EventType
    attempt: int
    redelivered: bool
    exchange: str = ""
    routing_key: str = ""

    @property
    def message_id(self) -> str:
        return self.envelope.message_id


class Permanent(Exception):
    """Raised by a handler for a message that can never succeed: dead-lettered at once."""


@dataclass(frozen=True, kw_only=True)
class Handler:
    """What every kind of handler has: a queue, what it is bound to, a handler, its limits.

    Not declared directly: a worker declares one of the kinds below, each with only the fields
    that mean something for it — :class:`EventHandler` (react to events, in batches),
    :class:`RpcServer` (answer commands), :class:`Timer` (events that fire later) and
    :class:`QueueReader` (read other queues as they are: the dead-letter collector).
    """

    queue: str
    events: Sequence[EventType]
    handler: Callable[[Message[Any]], Any]
    # Extra bindings beyond the events' own: (exchange, binding key), e.g. EVENT.binding(status="paid").
    bindings: Sequence[tuple[str, str]] = ()
    # False: bind only ``bindings`` (e.g. two of an event's routing keys, not all of them).
    bind_events: bool = True
    # Messages in flight per copy: enough to hide the broker round trip, few enough that a
    # slow copy does not hoard work its siblings could do.
    prefetch: int = 200
    # Delays before the 2nd, 3rd, … attempt; then the message is dead-lettered.
    retry_delays: Sequence[float] = (1, 5, 30)
    # Broker-side guard for crash loops (a handler that kills the process never reaches the
    # runner's own retry logic): after this many deliveries the broker dead-letters it.
    delivery_limit: int = 20
    # Messages each of the queues holds at most (its dead-letter queue too); a full queue
    # refuses publishes (the publisher keeps the message: the outbox, or the runner, which
    # leaves the original where it was), so a stalled worker cannot exhaust the broker.
    max_length: int = 1_000_000
    # Messages already waiting are handled in one transaction, up to this many (one commit,
    # one disk flush). 1 for handlers with effects outside the database (an email sent by a
    # batch that then rolls back would be sent again on the one-by-one retry).
    max_batch: int = 100
    # Seconds a handler may take before the process gives the message back and restarts.
    timeout: float = 300.0
    # True: the handlers return within seconds (the database, Redis, an RPC with a time-out;
    # nothing outside), so a batch runs on the connection's own thread, sparing the hand-off to
    # the handler thread and back (a sixth of a bare handling's CPU: docs/performance.md). While
    # it runs nothing answers the broker's heartbeats: one that blocked for two of them would
    # cost the connection, and its unacked batch would come back and be deduplicated. False
    # (providers, anything that may wait long): the handler thread, heartbeats kept flowing.
    quick: bool = False
    # Called after the handler failed, in a transaction of its own (the handler's rolled
    # back): ``on_failure(message, reason, final)``, ``final`` when the message is now
    # dead-lettered rather than retried. For failures users must see (the notifier's log);
    # a failure here is logged, never raised.
    on_failure: Callable[[Message[Any], str, bool], None] | None = field(default=None, compare=False)

    # What the kind does; the runner and the topology read these, never set them.
    rpc: ClassVar[bool] = False  # answers every request (idempotent by business key), no dedup by id
    # Fields of some kinds only: not arguments here, each kind below takes those it has.
    batch_handler: Callable[[list[Message[Any]]], list[Any]] | None = field(default=None, init=False, compare=False)
    linger: float = field(default=0.0, init=False)
    delay_seconds: int = field(default=0, init=False)
    max_priority: int = field(default=0, init=False)
    any_type: bool = field(default=False, init=False)
    consume_from: Callable[[], list[str]] | None = field(default=None, init=False, compare=False)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"

    def retry_queue(self, attempt: int) -> str:
        return f"{self.queue}.retry.{attempt}"

    @property
    def delay_queue(self) -> str:
        # The delay is in the name: a queue's TTL cannot change once declared.
        return f"{self.queue}.delay.{self.delay_seconds}s"

    def all_bindings(self) -> list[tuple[str, str]]:
        own = [(e.exchange, re.sub(r"\{[^}]*\}", "*", e.routing_key)) for e in self.events] if self.bind_events else []
        return list(dict.fromkeys([*own, *self.bindings]))

    def accepts(self, type_name: str) -> EventType | None:
        for event in self.events:
            if event.name == type_name:
                return event
        if self.any_type:
            from bus.catalog import EVENTS, Payload

            return EVENTS.get(type_name) or EventType(type_name, "", "", Payload)
        return None


@dataclass(frozen=True, kw_only=True)
class EventHandler(Handler):
    """Reacts to events: each once in effect (deduplicated by message id in the handler's
    transaction), what is waiting handled as one batch.

        audit_events = register(EventHandler(queue="audit.events", events=[...], handler=record,
                                             batch_handler=record_batch, linger=1.0))
    """

    # Handles a whole batch in one call (inside the batch's transaction), one result per
    # message, for handlers whose work is cheaper together. When a batch fails, the runner
    # retries its messages one by one through ``handler``.
    batch_handler: Callable[[list[Message[Any]]], list[Any]] | None = field(default=None, compare=False)
    # Seconds the runner waits for more messages when fewer than ``max_batch`` are in, before
    # it handles them: for handlers nobody waits for (the audit trail, analytics). 0: at once.
    linger: float = 0.0
    # Non-zero makes a classic priority queue (quorum queues have no priorities on 3.10).
    max_priority: int = 0
    # Takes every message type, validated against the registry when the type is known there
    # (the audit trail records what it does not know yet, too).
    any_type: bool = False


@dataclass(frozen=True, kw_only=True)
class Timer(EventHandler):
    """Events that fire later: each waits ``delay_seconds`` in ``<queue>.delay.<n>s`` (a TTL and
    a dead-letter route into the queue: a timer without a polling loop), then is handled."""

    delay_seconds: int

    def __post_init__(self) -> None:
        if self.delay_seconds <= 0:
            raise ValueError(f"{self.queue}: a timer needs a delay of at least one second")


@dataclass(frozen=True, kw_only=True)
class RpcServer(Handler):
    """Answers commands (``reply_to`` and ``correlation_id``): every request is answered, a
    business error (an exception with a ``code``) as its reply; commands are idempotent by
    their business key, so the runner does not skip repeats by message id. What is waiting
    runs as one transaction, each command in a savepoint of its own; never lingers."""

    rpc: ClassVar[bool] = True
    max_batch: int = 50
    prefetch: int = 50


@dataclass(frozen=True, kw_only=True)
class QueueReader(Handler):
    """Reads other queues as they are (the dead-letter collector): no envelope is required, no
    retry or dead-letter queue of its own; a failure gives the delivery back to its queue."""

    consume_from: Callable[[], list[str]] = field(compare=False)
    events: Sequence[EventType] = ()
    bind_events: bool = False
    # It never republishes (a failure gives the delivery back), so it has no retry queues.
    retry_delays: Sequence[float] = ()


_registry: dict[str, Handler] = {}
H = TypeVar("H", bound=Handler)


def register(handler: H) -> H:
    """Make a handler known to ``manage.py consume`` and to the topology."""
    existing = _registry.get(handler.queue)
    if existing is not None and existing is not handler:
        raise ValueError(f"two handlers declare the queue {handler.queue!r}")
    _registry[handler.queue] = handler
    return handler


def registered() -> dict[str, Handler]:
    """Every consumer of the modules in settings.PASSLINE_CONSUMER_MODULES, by queue name."""
    for module in getattr(settings, "PASSLINE_CONSUMER_MODULES", []):
        importlib.import_module(module)  # importing the module registers its consumers
    return dict(_registry)
