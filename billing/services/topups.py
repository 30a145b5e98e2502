"""Wallet top-ups through the payment provider, then a credit to the wallet.

Through a payment intent (:func:`top_up_start` in the web, :func:`top_up_prepare` in the
billing worker, which asks the provider for the intent off the web request): the provider's
page takes the card, and the
wallet is credited when the provider's signed webhook says the intent succeeded
(:func:`top_up_apply`, through billing/services/webhooks.py) or when Passline asks the provider
itself (:func:`top_up_refresh`).
Either way the credit's ledger key is the top-up's (``top-up:<id>``) and the top-up row is
locked first, so however often and however concurrently the news arrives, the wallet is
credited once.

Through a test card (:func:`wallet_top_up`): the contract's ``card_number`` top-up, only while
the simulated provider (which charges a card number directly) is configured.

Every call to the provider goes through the ``payment`` circuit breaker (passline/breakers.py):
while it is open nothing new is started (ProviderUnavailable) and nothing waits on the provider
(billing/services/availability.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.events import TOP_UP_REQUESTED
from billing.exceptions import (
    BillingError,
    CardDeclined,
    CardNumbersNotAccepted,
    DailyTopUpLimit,
    InvalidAmount,
    KeyReused,
)
from billing.models import LedgerEntry, TopUp
from billing.provider import (
    CANCELED,
    SUCCEEDED,
    CardNumberProvider,
    PaymentIntent,
    clean_card_number,
    payment_provider,
)
from billing.selectors import topped_up_today
from billing.services.availability import PROVIDER_DOWN, payments_refuse_while_unavailable, provider_unavailable
from billing.services.wallets import money, wallet_credit
from bus.outbox import outbox_write
from passline.breakers import PAYMENT, guarded
from passline.db import one_or_none

logger = logging.getLogger(__name__)

# What an intent-flow top-up's fingerprint stands for instead of a card number.
INTENT = "intent"


def _fingerprint(amount: object, card_number: str) -> str:
    # Keyed: a plain hash of a card number could be reversed by trying every number.
    return hmac.new(settings.SECRET_KEY.encode(), f"{amount}:{card_number}".encode(), hashlib.sha256).hexdigest()


def _check_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidAmount("The Idempotency-Key must be 1 to 255 characters.", code="invalid_idempotency_key")


def top_up_check_daily_limit(*, user: User, amount: Decimal) -> None:
    """DailyTopUpLimit when ``amount`` would take today's top-ups over ``TOP_UP_DAILY_LIMIT``:
    those credited since local midnight and those started since then that still wait on the
    provider (``topped_up_today``). Only a check: the services that record a top-up make it
    again under the wallet's row lock (:func:`_check_daily_limit_locked`)."""
    limit: Decimal = settings.TOP_UP_DAILY_LIMIT
    left = max(limit - topped_up_today(user=user), Decimal("0.00"))
    if amount > left:
        symbol = settings.CURRENCY_SYMBOL
        ending = f"{symbol}{left:,.2f} is left today." if left else "Nothing is left today; try again tomorrow."
        raise DailyTopUpLimit(
            f"You can top up at most {symbol}{limit:,.2f} a day. {ending}",
            field="amount",
            limit=f"{limit:.2f}",
            remaining=f"{left:.2f}",
        )


def _check_daily_limit_locked(*, user: User, amount: Decimal, idempotency_key: str | None) -> TopUp | None:
    """The daily cap, decided under a row lock inside the caller's transaction, which records the
    top-up: two top-ups racing are counted one after the other, never both against the same
    total. The lock is taken before the totals are read, so (at READ COMMITTED) they include
    what the other one committed while this one waited. A retry of the same key that waited for
    the first one gets the first one's top-up (to replay), not the cap.

    The row locked is the customer's own (``auth_user``), not the wallet's: a customer has no
    wallet before their first credit, and making an empty one just to lock it would be a change
    on a top-up that is refused or declined. Lock order: the customer, then (when credited) the
    wallet; nothing locks them the other way round."""
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    if idempotency_key is not None:
        previous = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
        if previous is not None:
            return previous
    top_up_check_daily_limit(user=user, amount=amount)
    return None


class _Replay(Exception):
    """Leaves the recording transaction (writing nothing) for a key's first top-up."""


def credit_key(top_up: TopUp) -> str:
    return f"top-up:{top_up.pk}"


# --- through a payment intent -------------------------------------------------------------

UNREACHABLE_REASON = "We could not reach the payment provider. Nothing was charged; try again later."


def top_up_start(*, user: User, amount: object, idempotency_key: str | None, return_url: Callable[[int], str]) -> TopUp:
    """A pending top-up, recorded at once; the billing worker asks the provider for its intent
    (:func:`top_up_prepare`, on the ``top_up.requested`` message written here in the same
    transaction), so no web request waits on the provider. ``return_url(top_up_id)`` is where
    the provider sends the customer back. The same key with the same amount returns the first
    top-up; with another amount KeyReused. ProviderUnavailable (nothing recorded) while the
    payment breaker is open."""
    amount = money(amount)
    _check_key(idempotency_key)
    fingerprint = _fingerprint(amount, INTENT)
    top_up = None
    if idempotency_key is not None:
        top_up = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
    if top_up is None:
        try:
            with transaction.atomic():
                # The cap only under the lock: checked before it, a retry of this key that
                # arrives as its first copy commits would be refused instead of replayed.
                top_up = _check_daily_limit_locked(user=user, amount=amount, idempotency_key=idempotency_key)
                if top_up is not None:
                    raise _Replay
                payments_refuse_while_unavailable()
                top_up = TopUp.objects.create(
                    user=user,
                    amount=amount,
                    currency=settings.CURRENCY,
                    status=TopUp.Status.PENDING,
                    idempotency_key=idempotency_key,
                    request_fingerprint=fingerprint,
                )
                outbox_write(
                    event=TOP_UP_REQUESTED,
                    payload={"top_up_id": top_up.pk, "user_id": user.pk, "return_url": return_url(top_up.pk)},
                    aggregate=f"top_up:{top_up.pk}",
                )
        except (_Replay, IntegrityError):
            # A concurrent request with the same key won: continue with its top-up.
            top_up = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
            if top_up is None:
                raise
        else:
            logger.info("top-up requested", extra={"top_up_id": top_up.pk})
    if top_up.request_fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was already used for a different top-up.")
    return top_up


def top_up_prepare(*, top_up_id: int, return_url: str) -> PaymentIntent | None:
    """The billing worker's part of a top-up: ask the provider for the intent (through the
    payment breaker) and save where the customer confirms it. Keyed by the top-up, so a retry
    after a lost answer gets the same intent, never a second. The provider's failure (or the
    breaker open) is raised: the worker retries (``TOP_UP_RETRY_DELAYS``). None when there is
    nothing to do (already prepared, settled, unknown)."""
    top_up = one_or_none(TopUp.objects.filter(pk=top_up_id))
    if top_up is None or top_up.status != TopUp.Status.PENDING or top_up.confirmation_url:
        return None
    provider = payment_provider()
    if top_up.provider_intent_id:
        intent_id = top_up.provider_intent_id
        intent = guarded(
            PAYMENT, "retrieve_intent", lambda: provider.retrieve_intent(intent_id), refusals=(BillingError,)
        )
    else:
        intent = guarded(
            PAYMENT,
            "create_intent",
            lambda: provider.create_intent(
                amount=top_up.amount,
                currency=top_up.currency,
                idempotency_key=f"passline-top-up-{top_up.pk}",
                metadata={"top_up_id": str(top_up.pk), "user_id": str(top_up.user_id)},
                return_url=return_url,
            ),
            refusals=(BillingError,),
        )
    TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING, confirmation_url="").update(
        provider_intent_id=intent.id, confirmation_url=intent.confirmation_url, client_secret=intent.client_secret
    )
    logger.info("top-up intent created", extra={"top_up_id": top_up.pk, "intent_id": intent.id})
    return intent


def top_up_unreachable(*, top_up_id: int, reason: str) -> None:
    """The worker's last attempt at the intent failed: the top-up is declined (the customer was
    never sent to the provider, so nothing was charged) and says why."""
    updated = TopUp.objects.filter(pk=top_up_id, status=TopUp.Status.PENDING, confirmation_url="").update(
        status=TopUp.Status.DECLINED, decline_reason=UNREACHABLE_REASON, settled_at=timezone.now()
    )
    if updated:
        logger.error("top-up declined: provider unreachable", extra={"top_up_id": top_up_id, "reason": reason[:500]})


def top_up_apply(*, intent: PaymentIntent, failed: bool) -> tuple[TopUp | None, str]:
    """Credit (or mark declined) the top-up a verified webhook event's intent pays, inside the
    caller's transaction (which recorded the event): the top-up, locked (None for an intent of
    no top-up), and what was done."""
    top_up = _locked_top_up(intent)
    if top_up is None:
        return None, "unknown intent"
    return top_up, _settle(top_up, intent, failed=failed)


def top_up_refresh(*, top_up: TopUp) -> TopUp:
    """A top-up brought up to date by asking the provider about its intent (for when the
    webhook is late or lost). The provider down or slow, or its breaker open: the top-up as it
    stands (the webhook still credits it when it comes)."""
    if top_up.status == TopUp.Status.SUCCEEDED or not top_up.provider_intent_id:
        return top_up
    intent_id = top_up.provider_intent_id
    provider = payment_provider()
    try:
        intent = guarded(
            PAYMENT, "retrieve_intent", lambda: provider.retrieve_intent(intent_id), refusals=(BillingError,)
        )
    except PROVIDER_DOWN as error:
        logger.info("top-up not refreshed: %s", error, extra={"top_up_id": top_up.pk})
        return top_up
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=top_up.pk)
        _settle(locked, intent, failed=False)
    return locked


def _locked_top_up(intent: PaymentIntent) -> TopUp | None:
    """The top-up an intent pays, locked: by the intent's id, or (when the webhook outran the
    saving of that id) by the top-up id Passline put in the intent's metadata."""
    top_up = one_or_none(TopUp.objects.select_for_update().filter(provider_intent_id=intent.id))
    raw_id = intent.metadata.get("top_up_id", "")
    if top_up is None and raw_id.isdigit():
        top_up = one_or_none(
            TopUp.objects.select_for_update().filter(
                pk=int(raw_id), provider_intent_id__isnull=True, status=TopUp.Status.PENDING
            )
        )
    return top_up


def _settle(top_up: TopUp, intent: PaymentIntent, *, failed: bool) -> str:
    """Write what the provider says of a locked top-up's intent: credited once, or declined."""
    if top_up.status == TopUp.Status.SUCCEEDED:
        return "already credited"
    if intent.amount != top_up.amount or intent.currency.upper() != top_up.currency:
        logger.error(
            "payment intent does not match its top-up",
            extra={"top_up_id": top_up.pk, "intent_id": intent.id, "intent_amount": str(intent.amount)},
        )
        return "amount mismatch"
    top_up.provider_intent_id = intent.id
    top_up.provider_reference = intent.id[:100]
    top_up.card_last4 = intent.card_last4
    if intent.status == SUCCEEDED:
        top_up.status = TopUp.Status.SUCCEEDED
        top_up.decline_reason = ""
        top_up.settled_at = timezone.now()
        top_up.save()
        wallet_credit(
            user_id=top_up.user_id,
            amount=top_up.amount,
            kind=LedgerEntry.Kind.TOP_UP,
            key=credit_key(top_up),
            description=f"Top-up by card ending {intent.card_last4}" if intent.card_last4 else "Top-up",
            top_up_id=top_up.pk,
        )
        return "credited"
    if failed or intent.status == CANCELED or intent.last_error:
        # Declined, for now: the intent may still be paid with another card, and then credited.
        top_up.status = TopUp.Status.DECLINED
        top_up.decline_reason = (intent.last_error or "The payment failed.")[:255]
        top_up.settled_at = timezone.now()
        top_up.save()
        return "declined"
    return "pending"


# --- through a test card (simulated provider only) -----------------------------------------


def wallet_top_up(*, user: User, amount: object, card_number: str, idempotency_key: str | None = None) -> TopUp:
    """Charge the card and credit the wallet. A declined card changes nothing (CardDeclined);
    the same Idempotency-Key with the same request returns the first top-up. Only with a
    provider that takes card numbers from Passline (the simulated one): CardNumbersNotAccepted
    otherwise."""
    provider = payment_provider()
    if not isinstance(provider, CardNumberProvider):
        raise CardNumbersNotAccepted(CARD_NUMBERS_REFUSED)
    amount = money(amount)
    number = clean_card_number(card_number)
    _check_key(idempotency_key)
    fingerprint = _fingerprint(amount, number)
    if idempotency_key is not None:
        previous = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
        if previous is not None:
            return _replay(previous, fingerprint)
    key = idempotency_key or uuid.uuid4().hex
    try:
        # The wallet's lock is held across the charge, so two racing top-ups cannot both pass
        # the daily cap; only the simulated provider, which answers in the process, charges
        # card numbers, so the lock is not held while waiting on a network.
        with transaction.atomic():
            previous = _check_daily_limit_locked(user=user, amount=amount, idempotency_key=idempotency_key)
            if previous is not None:
                raise _Replay
            payments_refuse_while_unavailable()
            try:
                charge = guarded(
                    PAYMENT,
                    "charge",
                    lambda: provider.charge(
                        card_number=number,
                        amount=amount,
                        currency=settings.CURRENCY,
                        idempotency_key=f"{user.pk}:{key}",
                    ),
                    refusals=(BillingError,),
                )
            except PROVIDER_DOWN as error:
                # Nothing recorded: a retry with the same Idempotency-Key reaches the provider with
                # the same key, so a charge the provider took before it timed out is not taken twice.
                raise provider_unavailable(error) from error
            top_up = TopUp.objects.create(
                user=user,
                amount=amount,
                currency=settings.CURRENCY,
                card_last4=number[-4:],
                status=TopUp.Status.SUCCEEDED if charge.approved else TopUp.Status.DECLINED,
                decline_reason=charge.decline_reason,
                provider_reference=charge.reference,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                settled_at=timezone.now(),
            )
            if charge.approved:
                wallet_credit(
                    user_id=user.pk,
                    amount=amount,
                    kind=LedgerEntry.Kind.TOP_UP,
                    key=credit_key(top_up),
                    description=f"Top-up by card ending {number[-4:]}",
                    top_up_id=top_up.pk,
                )
    except (_Replay, IntegrityError):
        # A concurrent retry with the same key won: answer as it did.
        previous = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
        if previous is None:
            raise
        return _replay(previous, fingerprint)
    if not charge.approved:
        raise CardDeclined(charge.decline_reason, top_up_id=top_up.pk)
    return top_up


CARD_NUMBERS_REFUSED = (
    "Card numbers are not accepted: create a top-up with POST /api/v1/wallet/top-ups and let the "
    "customer confirm it on the payment provider's page (its confirmation_url)."
)


def _replay(previous: TopUp, fingerprint: str) -> TopUp:
    if previous.request_fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was already used for a different top-up.")
    if previous.status == TopUp.Status.DECLINED:
        raise CardDeclined(previous.decline_reason, top_up_id=previous.pk)
    return previous
