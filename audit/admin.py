"""The audit trail, read-only, searchable by correlation id."""

from django.contrib import admin

from audit.models import AuditRecord


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "type", "routing_key", "correlation_id", "message_id"]
    list_filter = ["type", "exchange"]
    search_fields = ["message_id", "correlation_id", "causation_id"]
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
