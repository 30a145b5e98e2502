"""Writing messages to the transactional outbox: the only way a service emits an event."""

from __future__ import annotations

from typing import Any

from django.db import connection

from bus.catalog import EventType, routing_key_for
from bus.correlation import current_or_new_correlation_id
from bus.envelope import Envelope
from bus.models import OutboxMessage
from bus.nudge import nudge_after_commit


class OutboxOutsideTransaction(RuntimeError):
    """outbox_write was called outside a transaction: the event could outlive a rollback."""


def outbox_write(
    *, event: EventType, payload: dict[str, Any], aggregate: str, causation_id: str | None = None, priority: int = 0
) -> Envelope:
    """Validate ``payload`` and store the message in the caller's transaction.

    The message is published only if that transaction commits (the relay reads committed
    rows); an invalid payload raises InvalidPayload before anything is written.
    """
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(f"{event.name} must be written inside the state change's transaction")
    data = event.validate(payload)
    envelope = Envelope(
        type=event.name,
        version=event.version,
        payload=data,
        correlation_id=current_or_new_correlation_id(),
        causation_id=causation_id,
    )
    OutboxMessage.objects.create(
        message_id=envelope.message_id,
        type=event.name,
        exchange=event.exchange,
        routing_key=routing_key_for(event, data),
        aggregate=aggregate,
        correlation_id=envelope.correlation_id,
        body=envelope.to_json().decode(),
        priority=priority,
        created_at=envelope.occurred_at,
    )
    nudge_after_commit()
    return envelope
