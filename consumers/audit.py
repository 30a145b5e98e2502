"""The audit worker: every event and command that crosses the bus, stored append-only.

Bound to the ``audit`` fanout, which every domain exchange feeds: so every message has at
least one queue to reach, and the outbox relay's ``mandatory`` publishing reports only
messages sent to an exchange nobody is bound to at all.
"""

from __future__ import annotations

import logging

from audit.services import audit_records
from bus.catalog import Exchange
from bus.correlation import Trace, traced
from bus.handlers import EventHandler, Message, register

logger = logging.getLogger(__name__)


def record_batch(messages: list[Message]) -> list[None]:
    """Store the messages as they arrived, in one statement (each logged under its own trace)."""
    if logger.isEnabledFor(logging.DEBUG):
        for m in messages:
            with traced(Trace.of(m.envelope)):
                logger.debug("audit records %s", m.envelope.type, extra={"message_id": m.message_id})
    audit_records(messages=[(m.envelope, m.exchange, m.routing_key) for m in messages])
    return [None] * len(messages)


def record(message: Message) -> None:
    record_batch([message])


audit_events = register(
    EventHandler(
        queue="audit.events",
        events=(),
        any_type=True,
        handler=record,
        batch_handler=record_batch,
        bindings=[(Exchange.AUDIT, "")],
        prefetch=1000,
        max_batch=500,
        # Nobody waits for the trail: gathering for up to a second makes each transaction (its
        # commit, inbox insert and ack) carry a second's worth of messages, ~7 per order.
        linger=1.0,
        quick=True,
    )
)
