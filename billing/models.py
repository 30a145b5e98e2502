"""Wallets, their immutable ledger, top-ups and order payments. Money is Decimal, one currency
per deployment. A wallet's balance changes only together with a ledger entry, under the
wallet's row lock, and never goes below zero."""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class MoneyField(TypedDict):
    """The arguments of every DecimalField that holds money."""

    max_digits: int
    decimal_places: int


MONEY: MoneyField = {"max_digits": 12, "decimal_places": 2}
# Keys and provider ids compare byte for byte: under the database's default (case-insensitive)
# collation "abc" and "ABC" would be one key, and a client's second top-up answered as a replay
# of the first.
BINARY_COLLATION = "utf8mb4_bin"


class Wallet(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet")
    balance = models.DecimalField(**MONEY, default=0)
    currency = models.CharField(max_length=3)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative")]

    def __str__(self) -> str:
        return f"Wallet of {self.user}"


class LedgerEntry(models.Model):
    """One movement of money, never changed or deleted. ``amount`` is signed: credits are
    positive, debits negative; ``balance_after`` is the wallet's balance once it applied."""

    class Kind(models.TextChoices):
        TOP_UP = "top_up", "Top-up"
        CHARGE = "charge", "Order payment"
        REFUND = "refund", "Refund"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    # The same key again returns this entry instead of moving money a second time.
    idempotency_key = models.CharField(max_length=200)
    # No database constraint: an InnoDB foreign-key check takes a shared lock on the order
    # row, which billing holds while it waits for this very entry over RPC.
    order = models.ForeignKey(
        "ordering.Order", on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    top_up = models.ForeignKey("TopUp", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    description = models.CharField(max_length=255)
    correlation_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"], name="uniq_ledger_idempotency_key"),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.description})"


class TopUp(models.Model):
    """A payment into a wallet through the payment provider.

    Through a payment intent (the site and ``POST /wallet/top-ups``): ``pending`` until the
    provider's signed webhook says the intent succeeded (the wallet is credited then) or failed.
    The intent is made by the billing worker, off the web request: ``confirmation_url`` is ""
    until it is (and the top-up is declined if the provider cannot be reached in time).
    Through a test card (``POST /wallet/top-up``, simulated provider only): settled at once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCEEDED = "succeeded", "succeeded"
        DECLINED = "declined", "declined"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="top_ups")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    card_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    decline_reason = models.CharField(max_length=255, blank=True)
    provider_reference = models.CharField(max_length=100, blank=True)
    # The provider's payment intent; set once the provider has created it.
    provider_intent_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, db_collation=BINARY_COLLATION
    )
    # Where the customer confirms the intent, and the secret that lets their browser do it: saved
    # by the billing worker once the provider made the intent ("" until then).
    confirmation_url = models.CharField(max_length=1000, blank=True)
    client_secret = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, db_collation=BINARY_COLLATION)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="uniq_top_up_idempotency_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="top_up_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Top-up #{self.pk} of {self.amount} {self.currency}: {self.status}"


class PaymentEvent(models.Model):
    """A webhook event of the payment provider, recorded once its signature was verified. Its
    unique id makes a second delivery of the same event (a retry, or two at once) a no-op."""

    provider_event_id = models.CharField(max_length=255, unique=True, db_collation=BINARY_COLLATION)
    type = models.CharField(max_length=100)
    intent_id = models.CharField(max_length=255, blank=True, db_collation=BINARY_COLLATION)
    top_up = models.ForeignKey(TopUp, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    outcome = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.provider_event_id}"


class SimulatedIntent(models.Model):
    """The simulated payment provider's own record of a payment intent (its side of the
    wall: Passline's code outside ``billing.provider`` never reads it)."""

    class Status(models.TextChoices):
        REQUIRES_PAYMENT_METHOD = "requires_payment_method", "requires payment method"
        SUCCEEDED = "succeeded", "succeeded"
        CANCELED = "canceled", "canceled"

    id = models.CharField(primary_key=True, max_length=64, db_collation=BINARY_COLLATION)
    idempotency_key = models.CharField(max_length=255, unique=True, db_collation=BINARY_COLLATION)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30, choices=Status.choices)
    client_secret = models.CharField(max_length=128, db_collation=BINARY_COLLATION)
    metadata = models.JSONField(default=dict)
    return_url = models.CharField(max_length=1000)
    card_last4 = models.CharField(max_length=4, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.id}: {self.status}"


class Payment(models.Model):
    """What billing did about one order: charged (and maybe refunded), or failed."""

    class Status(models.TextChoices):
        CHARGED = "charged", "charged"
        FAILED = "failed", "failed"
        REFUNDED = "refunded", "refunded"

    order = models.OneToOneField("ordering.Order", on_delete=models.PROTECT, related_name="payment")
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices)
    charge_entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    refund_entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    failure_reason = models.CharField(max_length=255, blank=True)
    # A card order's payment intent at the provider and the card's last four digits ("" when
    # paid from the wallet).
    provider_intent_id = models.CharField(max_length=255, blank=True, db_collation=BINARY_COLLATION)
    card_last4 = models.CharField(max_length=4, blank=True)
    refund_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    refunded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Payment for order #{self.order_id}: {self.status}"
