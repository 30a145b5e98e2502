"""The balance service: a wallet changes only through an immutable ledger entry, under the
wallet's row lock, idempotently by key, and never below zero."""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from billing.events import BALANCE_CHANGED
from billing.exceptions import InsufficientFunds, InvalidAmount, KeyReused
from billing.models import LedgerEntry, Wallet
from bus.correlation import get_correlation_id
from bus.outbox import outbox_write
from passline.db import one_or_none

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# One movement may not exceed this: a typo of three zeros is refused, not executed.
MAX_MOVEMENT: Decimal = settings.MONEY_MAX_MOVEMENT


def money(value: object) -> Decimal:
    """A positive amount of at most MAX_MOVEMENT with at most two decimals, or InvalidAmount."""
    if isinstance(value, (float, bool)):
        raise InvalidAmount('Amounts are decimal strings such as "12.50", never floating-point numbers.')
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


# The movement is written out in SQL rather than built by the ORM: it is the balance
# worker's whole job, once per order, and compiling six model queries cost more CPU than
# running them. The statements are the ones the models would issue.
_WALLET = f"`{Wallet._meta.db_table}`"  # quoted as the ORM quotes it (MariaDB)
_LEDGER = f"`{LedgerEntry._meta.db_table}`"
_SELECT_WALLET = f"SELECT id, balance FROM {_WALLET} WHERE user_id = %s FOR UPDATE"
_CREATE_WALLET = (
    f"INSERT INTO {_WALLET} (user_id, balance, currency, updated_at) VALUES (%s, 0, %s, %s) "
    "ON DUPLICATE KEY UPDATE id = id"
)
_FIND_ENTRY = f"SELECT id, amount, kind FROM {_LEDGER} WHERE wallet_id = %s AND idempotency_key = %s"
_INSERT_ENTRY = (
    f"INSERT INTO {_LEDGER} (wallet_id, kind, amount, balance_after, idempotency_key, order_id, "
    "top_up_id, description, correlation_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_UPDATE_WALLET = f"UPDATE {_WALLET} SET balance = %s, updated_at = %s WHERE id = %s"


def _locked_wallet(cursor: CursorWrapper, user_id: int, now: str) -> tuple[int, Decimal]:
    """The wallet's id and balance under its row lock; created (empty) when it is missing."""
    cursor.execute(_SELECT_WALLET, [user_id])
    row = cursor.fetchone()
    if row is None:
        cursor.execute(_CREATE_WALLET, [user_id, settings.CURRENCY, now])
        cursor.execute(_SELECT_WALLET, [user_id])
        row = cursor.fetchone()
    return row[0], Decimal(row[1])


def _move(
    *,
    user_id: int,
    amount: Decimal,
    kind: str,
    key: str,
    description: str,
    order_id: int | None = None,
    top_up_id: int | None = None,
    isolated: bool = True,
) -> LedgerEntry:
    # isolated: in a savepoint, so a refused movement (insufficient funds, a reused key) leaves
    # the caller's transaction usable. Not isolated: the caller's transaction is the movement's
    # own (an RPC command, which the runner isolates), and a refusal rolls all of it back.
    with transaction.atomic(savepoint=isolated):
        if not key or len(key) > 200:
            raise InvalidAmount("A movement needs an idempotency key of 1 to 200 characters.")
        at = timezone.now()
        now = LedgerEntry._meta.get_field("created_at").get_db_prep_value(at, connection)
        with connection.cursor() as cursor:
            wallet_id, held = _locked_wallet(cursor, user_id, now)
            # Looked up under the wallet's lock: a concurrent retry of the same key waits here and
            # then finds the first one's entry.
            cursor.execute(_FIND_ENTRY, [wallet_id, key])
            found = cursor.fetchone()
            if found is not None:
                if Decimal(found[1]) != amount or found[2] != kind:
                    raise KeyReused(f"The key {key!r} was already used for another movement.")
                return LedgerEntry.objects.get(pk=found[0])
            balance = held + amount
            if balance < 0:
                raise InsufficientFunds(
                    f"The wallet holds {held}, {-amount} is needed.", balance=str(held), needed=str(-amount)
                )
            entry = LedgerEntry(
                wallet_id=wallet_id,
                kind=kind,
                amount=amount,
                balance_after=balance,
                idempotency_key=key,
                order_id=order_id,
                top_up_id=top_up_id,
                description=description[:255],
                correlation_id=get_correlation_id() or "",
                created_at=at,
            )
            cursor.execute(
                _INSERT_ENTRY,
                [
                    wallet_id,
                    kind,
                    amount,
                    balance,
                    key,
                    order_id,
                    top_up_id,
                    entry.description,
                    entry.correlation_id,
                    now,
                ],
            )
            entry.pk = cursor.lastrowid
            entry._state.adding, entry._state.db = False, connection.alias
            cursor.execute(_UPDATE_WALLET, [balance, now, wallet_id])
        outbox_write(
            event=BALANCE_CHANGED,
            aggregate=f"wallet:{wallet_id}",
            payload={
                "user_id": user_id,
                "entry_id": entry.pk,
                "kind": kind,
                "amount": amount,
                "balance": balance,
                "order_id": order_id,
            },
        )
        logger.info("wallet %s", kind, extra={"wallet_id": wallet_id, "entry_id": entry.pk, "amount": str(amount)})
        return entry


def wallet_credit(
    *,
    user_id: int,
    amount: object,
    kind: str,
    key: str,
    description: str,
    order_id: int | None = None,
    top_up_id: int | None = None,
    isolated: bool = True,
) -> LedgerEntry:
    """Add money (a top-up or a refund); the same key again returns the first entry.

    ``isolated=False``: the caller's transaction is this movement's alone (the balance
    worker's command), so a refusal may roll all of it back: no savepoint, two statements
    fewer."""
    return _move(
        user_id=user_id,
        amount=money(amount),
        kind=kind,
        key=key,
        description=description,
        order_id=order_id,
        top_up_id=top_up_id,
        isolated=isolated,
    )


def wallet_debit(
    *,
    user_id: int,
    amount: object,
    kind: str,
    key: str,
    description: str,
    order_id: int | None = None,
    isolated: bool = True,
) -> LedgerEntry:
    """Take money (an order's charge), or raise InsufficientFunds; the same key again
    returns the first entry, never a second movement. ``isolated``: as for :func:`wallet_credit`."""
    return _move(
        user_id=user_id,
        amount=-money(amount),
        kind=kind,
        key=key,
        description=description,
        order_id=order_id,
        isolated=isolated,
    )


def wallet_balance(*, user_id: int) -> Decimal:
    wallet = one_or_none(Wallet.objects.filter(user_id=user_id))
    return wallet.balance if wallet is not None else Decimal("0.00")
