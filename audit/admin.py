"""The audit trail, read-only: searchable by order (``order:42``), customer (``customer:7``),
correlation id, message id and type; an order's page links to its whole cross-service history."""

from __future__ import annotations

import json
import re

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from audit.models import AuditRecord
from passline.readonly_admin import ReadOnlyAdmin

_BY_SUBJECT = re.compile(r"^\s*(order|customer)\s*[:#]\s*(\d{1,19})\s*$", re.IGNORECASE)


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "type", "order_id", "customer_id", "routing_key", "correlation_id", "message_id"]
    list_filter = ["type", "exchange"]
    search_fields = ["message_id", "correlation_id", "causation_id", "type"]
    search_help_text = (
        "order:42 or customer:7 for one order's or customer's history; or a correlation id, message id or type."
    )
    date_hierarchy = "occurred_at"
    readonly_fields = ["envelope"]
    fields = ["envelope", "exchange", "routing_key", "recorded_at"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[AuditRecord], search_term: str):
        match = _BY_SUBJECT.match(search_term or "")
        if match:
            field = "order_id" if match[1].lower() == "order" else "customer_id"
            # A history reads oldest first.
            return queryset.filter(**{field: int(match[2])}).order_by("occurred_at", "id"), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="envelope")
    def envelope(self, record: AuditRecord) -> str:
        body = {
            "message_id": record.message_id,
            "type": record.type,
            "version": record.version,
            "occurred_at": record.occurred_at.isoformat(),
            "correlation_id": record.correlation_id,
            "causation_id": record.causation_id or None,
            "payload": record.payload,
        }
        return format_html("<pre>{}</pre>", json.dumps(body, indent=2, ensure_ascii=False))
