"""Tables of the message bus: the transactional outbox."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A message written in the same transaction as the state change it announces.

    The relay publishes unsent rows in id order per aggregate and sets ``sent_at`` only after
    the broker confirmed the message; a rolled-back transaction leaves no row, so no message.
    """

    message_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=100)
    exchange = models.CharField(max_length=100)
    routing_key = models.CharField(max_length=255)
    # "order:42": messages of one aggregate leave in the order they were written.
    aggregate = models.CharField(max_length=100, db_index=True)
    body = models.TextField()
    priority = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["sent_at", "id"], name="outbox_unsent")]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
