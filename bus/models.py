"""Tables of the message bus: the transactional outbox."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A message written in the same transaction as the state change it announces.

    The relay publishes unsent rows in id order per aggregate and sets ``sent_at`` only after
    the broker confirmed the message; a rolled-back transaction leaves no row, so no message.
    """

    # Not unique: an operator's replay of a dead letter goes out again under its own id.
    message_id = models.CharField(max_length=64, db_index=True)
    type = models.CharField(max_length=100)
    exchange = models.CharField(max_length=100)
    routing_key = models.CharField(max_length=255)
    # "order:42": messages of one aggregate leave in the order they were written.
    aggregate = models.CharField(max_length=100)
    correlation_id = models.CharField(max_length=128)
    body = models.TextField()
    priority = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Not before this time: unroutable or refused messages wait here, growing between tries.
    available_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["sent_at", "id"], name="outbox_unsent"),
            # Without sent_at, so marking a row sent touches one secondary index, not two.
            models.Index(fields=["aggregate", "id"], name="outbox_aggregate"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"


class ProcessedMessage(models.Model):
    """A message a consumer has handled, recorded in the handler's own transaction.

    A redelivered or duplicated message finds its row and has no second effect.
    """

    consumer = models.CharField(max_length=100)
    message_id = models.CharField(max_length=64)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "message_id"], name="uniq_processed_message")]
        indexes = [models.Index(fields=["processed_at"], name="processed_message_age")]

    def __str__(self) -> str:
        return f"{self.message_id} handled by {self.consumer}"


class DeadLetter(models.Model):
    """A message that failed for good, kept for an operator to inspect, replay or discard."""

    class State(models.TextChoices):
        DEAD = "dead", "dead"
        REPLAYED = "replayed", "replayed"
        DISCARDED = "discarded", "discarded"

    message_id = models.CharField(max_length=64, blank=True)
    # The queue it died in: the .dead queue the collector read it from says so, never a header.
    queue = models.CharField(max_length=255)
    type = models.CharField(max_length=100, blank=True)
    reason = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    correlation_id = models.CharField(max_length=128, blank=True)
    # The RabbitMQ user that first published it, as the broker authenticated it (bus/roles.py):
    # a letter whose publisher may not publish its type is never replayed.
    publisher = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField()
    headers = models.JSONField(default=dict)
    dead_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DEAD)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-dead_at"]
        indexes = [models.Index(fields=["state", "-dead_at"], name="dead_letter_state")]

    def __str__(self) -> str:
        return f"{self.type or 'message'} {self.message_id} from {self.queue}"
