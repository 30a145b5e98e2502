"""The balance service: a wallet changes only through an immutable ledger entry, under the
wallet's row lock, idempotently by key, and never below zero."""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction

from billing.exceptions import InsufficientFunds, InvalidAmount, KeyReused
from billing.models import LedgerEntry, Wallet
from bus.catalog import BALANCE_CHANGED
from bus.correlation import get_correlation_id
from bus.outbox import outbox_write
from passline.db import one_or_none

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# One movement may not exceed this: a typo of three zeros is refused, not executed.
MAX_MOVEMENT = Decimal("10000.00")


def money(value: object) -> Decimal:
    """A positive amount of at most MAX_MOVEMENT with at most two decimals, or InvalidAmount."""
    if isinstance(value, (float, bool)):
        raise InvalidAmount("Amounts are decimal strings such as \"12.50\", never floating-point numbers.")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidAmount(f"{value!r} is not an amount of money.") from None
    if not amount.is_finite() or amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidAmount("Amounts have at most two decimal places.")
    if amount <= 0:
        raise InvalidAmount("The amount must be more than zero.")
    if amount > MAX_MOVEMENT:
        raise InvalidAmount(f"At most {MAX_MOVEMENT} at a time.")
    return amount.quantize(CENT)


def _locked_wallet(user_id: int) -> Wallet:
    Wallet.objects.get_or_create(user_id=user_id, defaults={"currency": settings.CURRENCY})
    return Wallet.objects.select_for_update().get(user_id=user_id)


@transaction.atomic
def _move(*, user_id: int, amount: Decimal, kind: str, key: str, description: str,
          order_id: int | None = None, top_up_id: int | None = None) -> LedgerEntry:
    if not key or len(key) > 200:
        raise InvalidAmount("A movement needs an idempotency key of 1 to 200 characters.")
    wallet = _locked_wallet(user_id)
    # Looked up under the wallet's lock: a concurrent retry of the same key waits here and
    # then finds the first one's entry.
    existing = one_or_none(LedgerEntry.objects.filter(wallet=wallet, idempotency_key=key))
    if existing is not None:
        if existing.amount != amount or existing.kind != kind:
            raise KeyReused(f"The key {key!r} was already used for another movement.")
        return existing
    balance = wallet.balance + amount
    if balance < 0:
        raise InsufficientFunds(f"The wallet holds {wallet.balance}, {-amount} is needed.",
                                balance=str(wallet.balance), needed=str(-amount))
    entry = LedgerEntry.objects.create(
        wallet=wallet, kind=kind, amount=amount, balance_after=balance, idempotency_key=key,
        order_id=order_id, top_up_id=top_up_id, description=description[:255],
        correlation_id=get_correlation_id() or "",
    )
    wallet.balance = balance
    wallet.save(update_fields=["balance", "updated_at"])
    outbox_write(
        event=BALANCE_CHANGED, aggregate=f"wallet:{wallet.pk}",
        payload={"user_id": user_id, "entry_id": entry.pk, "kind": kind, "amount": amount, "balance": balance,
                 "order_id": order_id},
    )
    logger.info("wallet %s", kind, extra={"wallet_id": wallet.pk, "entry_id": entry.pk, "amount": str(amount)})
    return entry


def wallet_credit(*, user_id: int, amount: object, kind: str, key: str, description: str,
                  order_id: int | None = None, top_up_id: int | None = None) -> LedgerEntry:
    """Add money (a top-up or a refund); the same key again returns the first entry."""
    return _move(user_id=user_id, amount=money(amount), kind=kind, key=key, description=description,
                 order_id=order_id, top_up_id=top_up_id)


def wallet_debit(*, user_id: int, amount: object, kind: str, key: str, description: str,
                 order_id: int | None = None) -> LedgerEntry:
    """Take money (an order's charge), or raise InsufficientFunds; the same key again
    returns the first entry, never a second movement."""
    return _move(user_id=user_id, amount=-money(amount), kind=kind, key=key, description=description,
                 order_id=order_id)


def wallet_balance(*, user_id: int) -> Decimal:
    wallet = one_or_none(Wallet.objects.filter(user_id=user_id))
    return wallet.balance if wallet is not None else Decimal("0.00")
