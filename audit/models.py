"""The audit trail: every message that crossed the bus, append-only."""

from django.db import models


class AuditRecord(models.Model):
    message_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    version = models.PositiveIntegerField()
    exchange = models.CharField(max_length=100)
    routing_key = models.CharField(max_length=255)
    correlation_id = models.CharField(max_length=128, db_index=True)
    causation_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField()
    # Taken from the payload when it names them, so the trail can be searched by order and
    # by customer without reading every payload.
    order_id = models.PositiveBigIntegerField(null=True, blank=True)
    customer_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["order_id", "occurred_at"], name="audit_order_history"),
            models.Index(fields=["customer_id", "occurred_at"], name="audit_customer_history"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
