"""The delivery log (one row per message, customer and channel, whatever became of it) and
the addresses customers proved are theirs."""

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
    # "order:<id>:<step>:<channel>", "order:<id>:<step>" (a step told once, by one channel),
    # "welcome:<customer>:<channel>", "verify:<channel>:<customer>:<uuid>", "resend:<id>:<n>".
    key = models.CharField(max_length=120, unique=True)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    order = models.ForeignKey(
        "ordering.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    message = models.CharField(max_length=40)  # the template: "order_paid", "welcome", …
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254, blank=True)  # address, number; blank for push
    # The text as sent: written when it is planned, for a notification to be sent; blank for one
    # not sent then (written if it is resent, from its order and ``event_values``).
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=200, blank=True)  # the page it is about, as a path
    # Of a notification not written: what its text reads that came with the event rather than
    # from the order ({"amount": "12.50", "reason": "…"}: a refund's amount, the reason given).
    event_values = models.JSONField(default=dict, blank=True)
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


class VerifiedAddress(models.Model):
    """An address a customer proved is theirs: a link followed (email) or a code typed (SMS).

    It holds for that address only: a customer whose email or phone on the account differs
    from ``address`` has no verified address on that channel (and the row is dropped as soon
    as the account's address changes, see notifications/apps.py)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verified_addresses")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254)  # as notifications.addresses.normalize writes it
    verified_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel"], name="verified_address_per_channel")]

    def __str__(self) -> str:
        return f"{self.channel} {self.address} of {self.user_id}"


class PhoneCode(models.Model):
    """The code last texted to a customer to prove a phone number: only its keyed digest is
    kept, it expires, and it takes a few wrong guesses before it is spent."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="phone_code")
    phone = models.CharField(max_length=32)  # normalized: the number the code proves
    digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)  # wrong guesses so far
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"code for {self.phone} of {self.user_id}"
