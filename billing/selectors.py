"""Reads of billing: a customer's wallet, its ledger, top-ups and an order's payment.
Writes live in ``billing.services``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Sum
from django.utils import timezone

from billing.models import LedgerEntry, Payment, TopUp, Wallet
from passline.db import one_or_none

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class WalletSummary:
    balance: Decimal
    currency: str


def wallet_summary(*, user: User) -> WalletSummary:
    """The balance (0.00 before the first top-up creates the wallet) and the currency."""
    balance = one_or_none(Wallet.objects.filter(user_id=user.pk).values_list("balance", flat=True))
    return WalletSummary(balance=balance if balance is not None else ZERO, currency=settings.CURRENCY)


def ledger_entries(*, user: User, limit: int = 50) -> list[LedgerEntry]:
    """The wallet's movements, newest first. Ids follow the order in which entries applied
    (each is written under the wallet's lock), so they order the history exactly."""
    return list(LedgerEntry.objects.filter(wallet__user_id=user.pk).order_by("-id")[:limit])


def topped_up_today(*, user: User) -> Decimal:
    """What counts against today's top-up cap: what the wallet's ledger credited by top-ups
    since local midnight, and the top-ups started since then that still wait on the provider.
    (A pending top-up has no ledger entry: the credit and the change to succeeded are one
    transaction, so nothing is counted twice. A declined one counts nothing.)"""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    credited = LedgerEntry.objects.filter(
        wallet__user_id=user.pk, kind=LedgerEntry.Kind.TOP_UP, created_at__gte=midnight
    ).aggregate(total=Sum("amount"))["total"]
    pending = TopUp.objects.filter(user_id=user.pk, status=TopUp.Status.PENDING, created_at__gte=midnight).aggregate(
        total=Sum("amount")
    )["total"]
    return (credited or ZERO) + (pending or ZERO)


def top_up_by_key(*, user: User, idempotency_key: str) -> TopUp | None:
    return one_or_none(TopUp.objects.filter(user_id=user.pk, idempotency_key=idempotency_key))


def top_up_of(*, user: User, top_up_id: int) -> TopUp | None:
    """One of the user's own top-ups; None for another's, exactly as for one that does not exist."""
    return one_or_none(TopUp.objects.filter(user_id=user.pk, pk=top_up_id))


def top_up_entry(*, top_up: TopUp) -> LedgerEntry | None:
    """The ledger entry that credited a succeeded top-up (None for a declined one)."""
    return LedgerEntry.objects.filter(top_up_id=top_up.pk).first()


def order_payment(*, order_id: int) -> Payment | None:
    """What billing did about the order, or None while it has not got to it (or never will)."""
    return one_or_none(Payment.objects.select_related("charge_entry", "refund_entry").filter(order_id=order_id))
