"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditRecord


def order_history(*, order_id: int) -> QuerySet[AuditRecord]:
    """Everything every service said about one order, in time order."""
    return AuditRecord.objects.filter(order_id=order_id).order_by("occurred_at", "id")
