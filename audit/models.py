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

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
