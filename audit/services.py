"""Recording the audit trail."""

from __future__ import annotations

from audit.models import AuditRecord
from bus.envelope import Envelope


def audit_record(*, envelope: Envelope, exchange: str, routing_key: str) -> None:
    """Store one message, once (a redelivery finds its row)."""
    AuditRecord.objects.get_or_create(
        message_id=envelope.message_id,
        defaults={
            "type": envelope.type, "version": envelope.version, "exchange": exchange, "routing_key": routing_key,
            "correlation_id": envelope.correlation_id, "causation_id": envelope.causation_id or "",
            "occurred_at": envelope.occurred_at, "payload": envelope.payload,
        },
    )
