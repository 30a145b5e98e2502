"""Writing messages to the transactional outbox: the only way a service emits an event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from bus.catalog import EventType, routing_key_for
from bus.correlation import current_or_new_correlation_id, get_causation_id, get_correlation_id
from bus.envelope import Envelope
from bus.models import OutboxMessage
from bus.nudge import nudge_after_commit


class OutboxOutsideTransaction(RuntimeError):
    """outbox_write was called outside a transaction: the event could outlive a rollback."""


@dataclass(frozen=True)
class Pending:
    """One message for :func:`outbox_write_many`.

    Its correlation and causation ids are those of the work in hand where it is made (the
    request, the message being handled; bus/correlation.py): a batch handler that makes each
    message's ``Pending`` under that message's trace writes them all in one statement, each
    naming its own request and cause.
    """

    event: EventType
    payload: dict[str, Any]
    aggregate: str
    causation_id: str | None = field(default_factory=get_causation_id)
    priority: int = 0
    correlation_id: str | None = field(default_factory=get_correlation_id)


def outbox_write(
    *, event: EventType, payload: dict[str, Any], aggregate: str, causation_id: str | None = None, priority: int = 0
) -> Envelope:
    """Validate ``payload`` and store the message in the caller's transaction.

    The message is published only if that transaction commits (the relay reads committed
    rows); an invalid payload raises InvalidPayload before anything is written.
    """
    cause = causation_id if causation_id is not None else get_causation_id()
    return outbox_write_many([Pending(event, payload, aggregate, cause, priority)])[0]


def outbox_write_many(messages: list[Pending]) -> list[Envelope]:
    """Store several messages in the caller's transaction with one INSERT, in this order.

    Every payload is validated before anything is written. The statement is written out
    rather than built by the ORM: every state change of the system ends here, and compiling
    a model insert cost more than the insert itself.
    """
    if not connection.in_atomic_block:
        names = ", ".join(sorted({m.event.name for m in messages}))
        raise OutboxOutsideTransaction(f"{names} must be written inside the state change's transaction")
    if not messages:
        return []
    # Messages made outside any request or message (a command line) share one fresh id.
    shared = current_or_new_correlation_id()
    envelopes: list[Envelope] = []
    params: list[Any] = []
    for message in messages:
        data = message.event.validate(message.payload)
        correlation_id = message.correlation_id or shared
        envelope = Envelope(
            type=message.event.name,
            version=message.event.version,
            payload=data,
            correlation_id=correlation_id,
            causation_id=message.causation_id,
        )
        envelopes.append(envelope)
        at = _db_datetime(envelope.occurred_at)
        params += [
            envelope.message_id,
            message.event.name,
            message.event.exchange,
            routing_key_for(message.event, data),
            message.aggregate,
            correlation_id,
            envelope.to_json().decode(),
            message.priority,
            at,
            at,
        ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT + ", ".join([_ROW] * len(messages)), params)
    nudge_after_commit()
    return envelopes


_INSERT = (
    f"INSERT INTO `{OutboxMessage._meta.db_table}` (message_id, type, exchange, routing_key, aggregate, "
    "correlation_id, body, priority, created_at, available_at, attempts, last_error) VALUES "
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '')"


def _db_datetime(value: datetime) -> Any:
    return OutboxMessage._meta.get_field("created_at").get_db_prep_value(value, connection)
