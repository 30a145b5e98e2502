"""The payment-provider interface, its signed webhook events, and the simulated provider.

The interface has the shape of a real card processor's (Stripe's PaymentIntents): Passline asks
the provider for a *payment intent* (an amount, a currency, an idempotency key, metadata); the
customer's browser confirms it on the provider's own page (the card number goes to the provider,
never to Passline); the provider then calls Passline's webhook with an event
(``payment_intent.succeeded``, ``payment_intent.payment_failed``) signed with HMAC-SHA256 over
``<timestamp>.<raw body>``, in a header of the form ``t=<unix time>,v1=<hex digest>`` (Stripe's).
An event is believed only when its signature matches and its timestamp is within the tolerance
window, so a captured delivery cannot be replayed later.

The simulated provider implements the same interface on Passline's own database and pages
(``/simulated-provider/…``, mounted only while it is configured), and also charges a card number
directly (:class:`CardNumberProvider`) for the contract's test-card top-up. It honours the test
cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined; any other number that
passes the Luhn check succeeds. Production refuses to start with it unless ``PASSLINE_DEMO=1``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.module_loading import import_string

from billing.exceptions import InvalidCard, KeyReused, WebhookRejected
from billing.models import SimulatedIntent
from passline.db import one_or_none

SIMULATED_PROVIDER = "billing.provider.SimulatedProvider"
DECLINED_CARDS = {"4000000000000002": "Your card was declined."}

# The statuses of a payment intent (Stripe's names). Passline credits only ``succeeded``.
REQUIRES_PAYMENT_METHOD = "requires_payment_method"
SUCCEEDED = "succeeded"
CANCELED = "canceled"
# The webhook events Passline acts on; any other type is acknowledged and ignored.
EVENT_SUCCEEDED = "payment_intent.succeeded"
EVENT_FAILED = "payment_intent.payment_failed"


@dataclass(frozen=True)
class Charge:
    approved: bool
    reference: str
    decline_reason: str = ""


@dataclass(frozen=True)
class PaymentIntent:
    """A payment as the provider knows it. ``confirmation_url`` is the provider's page where
    the customer enters the card; ``client_secret`` lets that customer's browser confirm it."""

    id: str
    amount: Decimal
    currency: str
    status: str
    # Not in the provider's events: only its API's answers to Passline carry them.
    client_secret: str = ""
    confirmation_url: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    card_last4: str = ""
    last_error: str = ""


@dataclass(frozen=True)
class WebhookEvent:
    """An event the provider sent, once its signature was verified."""

    id: str
    type: str
    created: int
    intent: PaymentIntent | None


class ProviderError(Exception):
    """The provider failed to answer: a timeout, a dropped connection, a 5xx. Adapters raise it
    (or the ``OSError``/``TimeoutError`` of their client); it counts against the payment
    breaker (passline/breakers.py). A refusal that is an answer (a declined card, a reused key)
    is not one."""


class PaymentProvider(Protocol):
    """What Passline needs of a payment provider. Adapters turn the provider's failures into
    exceptions (:class:`ProviderError` when the provider is down or slow: each call gives up
    after ``settings.PAYMENT_PROVIDER_TIMEOUT`` seconds); ``construct_event`` raises
    :class:`WebhookRejected` for a delivery it cannot verify. Every call that reaches the
    provider goes through the ``payment`` circuit breaker (billing/services/topups.py)."""

    # The request header that carries a webhook's signature.
    signature_header: str

    def create_intent(
        self, *, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str], return_url: str
    ) -> PaymentIntent:
        """A new intent, or the one made before under the same idempotency key."""
        ...

    def retrieve_intent(self, intent_id: str) -> PaymentIntent: ...

    def construct_event(self, *, payload: bytes, signature_header: str | None) -> WebhookEvent: ...


@runtime_checkable
class CardNumberProvider(Protocol):
    """A provider that takes a card number from Passline itself: the simulated one only."""

    def charge(self, *, card_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Charge: ...


def payment_provider() -> PaymentProvider:
    provider: PaymentProvider = import_string(settings.PAYMENT_PROVIDER)()
    # The settings refuse the simulated provider's own path in production; this also catches
    # it under another name (a subclass, a re-export).
    if isinstance(provider, SimulatedProvider) and settings.PRODUCTION and not settings.PASSLINE_DEMO:
        raise ImproperlyConfigured("The simulated payment provider runs in production only with PASSLINE_DEMO=1.")
    return provider


def card_numbers_accepted() -> bool:
    """Whether Passline may take a card number itself (the contract's test-card top-up)."""
    return isinstance(payment_provider(), CardNumberProvider)


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


# --- signed webhooks (Stripe's scheme) ---------------------------------------------------


def sign_payload(payload: bytes, *, secret: str, timestamp: int) -> str:
    """The signature header of a delivery of ``payload`` at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    payload: bytes, header: str | None, *, secret: str, tolerance: int, now: float | None = None
) -> None:
    """Raise WebhookRejected unless ``header`` signs exactly ``payload`` with ``secret`` at a
    timestamp at most ``tolerance`` seconds from now. Several ``v1`` signatures may be present
    (the provider signs with each of its active secrets while one is rolled); one must match."""
    if not header:
        raise WebhookRejected("The webhook carries no signature.")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise WebhookRejected("The webhook's signature header is not of the form t=<time>,v1=<signature>.")
    timestamp = int(timestamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookRejected("The webhook's timestamp is outside the tolerance window.")
    expected = sign_payload(payload, secret=secret, timestamp=timestamp).partition(",v1=")[2]
    # Every candidate is compared, each in constant time: how long this takes tells nothing.
    matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matches):
        raise WebhookRejected("The webhook's signature does not match its body.")


def minor_units(amount: Decimal) -> int:
    """Amounts travel as integers of cents on the provider's wire (Stripe's convention)."""
    return int(amount * 100)


def intent_object(intent: PaymentIntent) -> dict[str, Any]:
    """An intent as the provider's JSON writes it (the ``data.object`` of an event)."""
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": minor_units(intent.amount),
        "currency": intent.currency.lower(),
        "status": intent.status,
        "metadata": dict(intent.metadata),
        "last_payment_error": {"message": intent.last_error} if intent.last_error else None,
        "payment_method_details": {"card": {"last4": intent.card_last4}} if intent.card_last4 else None,
    }


def parse_event(payload: bytes) -> WebhookEvent:
    """A verified body as an event; WebhookRejected (code ``invalid_event``) when it is none."""
    try:
        data = json.loads(payload)
        obj = data["data"]["object"]
        intent = None
        if isinstance(obj, dict) and obj.get("object") == "payment_intent":
            error = obj.get("last_payment_error") or {}
            card = (obj.get("payment_method_details") or {}).get("card") or {}
            intent = PaymentIntent(
                id=str(obj["id"]),
                amount=Decimal(int(obj["amount"])) / 100,
                currency=str(obj["currency"]).upper(),
                status=str(obj["status"]),
                metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
                card_last4=str(card.get("last4") or "")[:4],
                last_error=str(error.get("message") or "")[:255],
            )
        return WebhookEvent(id=str(data["id"]), type=str(data["type"]), created=int(data["created"]), intent=intent)
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation, RecursionError) as error:
        raise WebhookRejected(f"The webhook's body is not an event ({error}).", code="invalid_event") from None


# --- the simulated provider ----------------------------------------------------------------


class SimulatedProvider:
    """Answers at once, deterministically; keeps its intents in its own table and serves its
    own confirmation page. The same idempotency key gets the same charge or intent."""

    signature_header = "Simulated-Provider-Signature"

    def charge(self, *, card_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Charge:
        reference = "sim_" + hashlib.sha256(f"{idempotency_key}:{card_number}:{amount}".encode()).hexdigest()[:20]
        reason = DECLINED_CARDS.get(card_number)
        if reason:
            return Charge(approved=False, reference=reference, decline_reason=reason)
        return Charge(approved=True, reference=reference)

    def create_intent(
        self, *, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str], return_url: str
    ) -> PaymentIntent:
        try:
            with transaction.atomic():
                record = SimulatedIntent.objects.create(
                    id="pi_sim_" + secrets.token_hex(12),
                    idempotency_key=idempotency_key,
                    amount=amount,
                    currency=currency,
                    status=REQUIRES_PAYMENT_METHOD,
                    client_secret="secret_" + secrets.token_urlsafe(24),
                    metadata=dict(metadata),
                    return_url=return_url,
                )
        except IntegrityError:
            record = SimulatedIntent.objects.get(idempotency_key=idempotency_key)
            if record.amount != amount or record.currency != currency:
                raise KeyReused("This idempotency key was used for another payment intent.") from None
        return self._intent(record)

    def retrieve_intent(self, intent_id: str) -> PaymentIntent:
        return self._intent(SimulatedIntent.objects.get(pk=intent_id))

    def construct_event(self, *, payload: bytes, signature_header: str | None) -> WebhookEvent:
        verify_signature(
            payload,
            signature_header,
            secret=settings.PAYMENT_WEBHOOK_SECRET,
            tolerance=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
        )
        return parse_event(payload)

    # The provider's side: what its confirmation page does.

    def find(self, intent_id: str, client_secret: str) -> SimulatedIntent | None:
        """The intent whose client secret this is, else None."""
        record = one_or_none(SimulatedIntent.objects.filter(pk=intent_id))
        if record is None or not hmac.compare_digest(record.client_secret, client_secret):
            return None
        return record

    @transaction.atomic
    def confirm(self, intent_id: str, card_number: str) -> tuple[bytes, str] | None:
        """Pay the intent with this (clean) card number; the signed event to deliver, or None
        when the intent is no longer open."""
        record = SimulatedIntent.objects.select_for_update().get(pk=intent_id)
        if record.status != REQUIRES_PAYMENT_METHOD:
            return None
        reason = DECLINED_CARDS.get(card_number, "")
        record.status = REQUIRES_PAYMENT_METHOD if reason else SUCCEEDED
        record.last_error = reason
        record.card_last4 = card_number[-4:]
        record.save(update_fields=["status", "last_error", "card_last4"])
        return self.signed_event(EVENT_FAILED if reason else EVENT_SUCCEEDED, self._intent(record))

    @staticmethod
    def signed_event(event_type: str, intent: PaymentIntent, *, timestamp: int | None = None) -> tuple[bytes, str]:
        """The body and signature header of the webhook delivery of an event about ``intent``."""
        now = int(time.time()) if timestamp is None else timestamp
        body = {
            "id": "evt_sim_" + secrets.token_hex(12),
            "object": "event",
            "type": event_type,
            "created": now,
            "data": {"object": intent_object(intent)},
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        return payload, sign_payload(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=now)

    @staticmethod
    def _intent(record: SimulatedIntent) -> PaymentIntent:
        # The confirmation page is served by the site the customer comes back to.
        origin = urlsplit(record.return_url)
        base = f"{origin.scheme}://{origin.netloc}" if origin.netloc else ""
        path = reverse("simulated_provider_confirm", args=[record.pk])
        return PaymentIntent(
            id=record.pk,
            amount=record.amount,
            currency=record.currency,
            status=record.status,
            client_secret=record.client_secret,
            confirmation_url=f"{base}{path}?{urlencode({'client_secret': record.client_secret})}",
            metadata=record.metadata,
            card_last4=record.card_last4,
            last_error=record.last_error,
        )
