"""The audit worker: every event and command that crosses the bus, stored append-only.

Bound to the ``audit`` fanout, which every domain exchange feeds: so every message has at
least one queue to reach, and the outbox relay's ``mandatory`` publishing reports only
messages sent to an exchange nobody is bound to at all.
"""

from __future__ import annotations

from audit.services import audit_record
from bus.catalog import Exchange
from bus.consumer import Consumer, Message, register


def record(message: Message) -> None:
    """Store the message as it arrived."""
    audit_record(envelope=message.envelope, exchange=message.exchange, routing_key=message.routing_key)


audit_events = register(Consumer(
    queue="audit.events", events=(), any_type=True, handler=record,
    bindings=[(Exchange.AUDIT, "")], prefetch=500,
))
