"""The payment-provider interface for wallet top-ups, and the simulated provider.

The simulated provider honours docs/contract.md's test cards: 4242 4242 4242 4242 succeeds,
4000 0000 0000 0002 is declined; any other number that passes the Luhn check succeeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from billing.exceptions import InvalidCard

DECLINED_CARDS = {"4000000000000002": "Your card was declined."}


@dataclass(frozen=True)
class Charge:
    approved: bool
    reference: str
    decline_reason: str = ""


class PaymentProvider(Protocol):
    def charge(self, *, card_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Charge: ...


def clean_card_number(raw: str) -> str:
    """Digits only, 12–19 of them, passing the Luhn check; else InvalidCard."""
    number = "".join(ch for ch in str(raw) if ch not in " -")
    if not number.isdigit() or not 12 <= len(number) <= 19:
        raise InvalidCard("Enter a card number of 12 to 19 digits.")
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    if total % 10:
        raise InvalidCard("That card number is not valid (check the digits).")
    return number


class SimulatedProvider:
    """Answers at once, deterministically; the same idempotency key gets the same reference."""

    def charge(self, *, card_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Charge:
        reference = "sim_" + hashlib.sha256(f"{idempotency_key}:{card_number}:{amount}".encode()).hexdigest()[:20]
        reason = DECLINED_CARDS.get(card_number)
        if reason:
            return Charge(approved=False, reference=reference, decline_reason=reason)
        return Charge(approved=True, reference=reference)


def payment_provider() -> PaymentProvider:
    provider: PaymentProvider = import_string(settings.PAYMENT_PROVIDER)()
    return provider
