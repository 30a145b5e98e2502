"""The delivery log: one row per message, customer and channel, whatever became of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        PUSH = "push", "In the browser"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # planned, waiting for (another) attempt
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent"  # on purpose: watching live, no address, no page open
        FAILED = "failed", "Failed"  # every attempt failed; the command is dead-lettered

    # What makes a notification the same one twice: the customer never gets it again.
    # "order:<id>:<step>:<channel>", "welcome:<customer>:<channel>", "resend:<id>:<n>".
    key = models.CharField(max_length=120, unique=True)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    order = models.ForeignKey(
        "ordering.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    message = models.CharField(max_length=40)  # the template: "order_paid", "welcome", …
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254, blank=True)  # address, number; blank for push
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    link = models.CharField(max_length=200, blank=True)  # the page it is about, as a path
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=500, blank=True)  # why not sent, or the last error
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_id = models.CharField(max_length=200, blank=True)  # Message-ID, SMS sid, sockets reached
    correlation_id = models.CharField(max_length=64, blank=True)
    resend_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="notification_customer")]

    def __str__(self) -> str:
        return f"{self.message} by {self.channel} to {self.customer_id} ({self.status})"
