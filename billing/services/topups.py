"""Wallet top-ups: a card payment through the provider, then a credit to the wallet."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from billing.exceptions import CardDeclined, InvalidAmount, KeyReused
from billing.models import LedgerEntry, TopUp
from billing.provider import clean_card_number, payment_provider
from billing.services.wallets import money, wallet_credit
from passline.db import one_or_none


def _fingerprint(amount: object, card_number: str) -> str:
    # Keyed: a plain hash of a card number could be reversed by trying every number.
    return hmac.new(settings.SECRET_KEY.encode(), f"{amount}:{card_number}".encode(), hashlib.sha256).hexdigest()


def wallet_top_up(*, user: User, amount: object, card_number: str, idempotency_key: str | None = None) -> TopUp:
    """Charge the card and credit the wallet. A declined card changes nothing (CardDeclined);
    the same Idempotency-Key with the same request returns the first top-up."""
    amount = money(amount)
    number = clean_card_number(card_number)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidAmount("The Idempotency-Key must be 1 to 255 characters.", code="invalid_idempotency_key")
    fingerprint = _fingerprint(amount, number)
    if idempotency_key is not None:
        previous = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
        if previous is not None:
            return _replay(previous, fingerprint)
    key = idempotency_key or uuid.uuid4().hex
    charge = payment_provider().charge(
        card_number=number, amount=amount, currency=settings.CURRENCY, idempotency_key=f"{user.pk}:{key}"
    )
    try:
        with transaction.atomic():
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
            )
            if charge.approved:
                wallet_credit(
                    user_id=user.pk,
                    amount=amount,
                    kind=LedgerEntry.Kind.TOP_UP,
                    key=f"top-up:{top_up.pk}",
                    description=f"Top-up by card ending {number[-4:]}",
                    top_up_id=top_up.pk,
                )
    except IntegrityError:
        # A concurrent retry with the same key won: answer as it did.
        previous = one_or_none(TopUp.objects.filter(user=user, idempotency_key=idempotency_key))
        if previous is None:
            raise
        return _replay(previous, fingerprint)
    if not charge.approved:
        raise CardDeclined(charge.decline_reason, top_up_id=top_up.pk)
    return top_up


def _replay(previous: TopUp, fingerprint: str) -> TopUp:
    if previous.request_fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was already used for a different top-up.")
    if previous.status == TopUp.Status.DECLINED:
        raise CardDeclined(previous.decline_reason, top_up_id=previous.pk)
    return previous
