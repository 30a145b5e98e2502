"""Recording the audit trail."""

from __future__ import annotations

from audit.models import AuditRecord
from bus.envelope import Envelope


def subjects(payload: object) -> tuple[int | None, int | None]:
    """The order and the customer a payload is about, where it names them.

    Order events say ``customer_id``; wallet commands and events say ``user_id``.
    """
    if not isinstance(payload, dict):
        return None, None

    def whole(value: object) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    return whole(payload.get("order_id")), whole(payload.get("customer_id", payload.get("user_id")))


def audit_records(*, messages: list[tuple[Envelope, str, str]]) -> None:
    """Store messages (envelope, exchange, routing key), each once, in one statement: a message
    already stored (a redelivery, or the same message twice in the batch) is left as it is."""
    rows = []
    for envelope, exchange, routing_key in messages:
        order_id, customer_id = subjects(envelope.payload)
        rows.append(
            AuditRecord(
                message_id=envelope.message_id,
                type=envelope.type,
                version=envelope.version,
                exchange=exchange,
                routing_key=routing_key,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id or "",
                occurred_at=envelope.occurred_at,
                payload=envelope.payload,
                order_id=order_id,
                customer_id=customer_id,
            )
        )
    AuditRecord.objects.bulk_create(rows, ignore_conflicts=True)
