"""The payment provider's signed webhook: each event recorded once, then routed by what its
intent pays. An intent whose metadata names an order settles a card order
(billing/services/card_payments.py); any other, a wallet top-up (billing/services/topups.py).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from billing.models import PaymentEvent
from billing.provider import EVENT_FAILED, EVENT_SUCCEEDED, WebhookEvent, payment_provider
from billing.services.card_payments import intent_names_order, order_card_apply
from billing.services.topups import top_up_apply

logger = logging.getLogger(__name__)


def payment_webhook_apply(*, payload: bytes, signature: str | None) -> str:
    """Verify a webhook delivery of the provider (WebhookRejected, changing nothing, when its
    signature is missing, wrong or stale) and apply its event; what was done, in words."""
    event = payment_provider().construct_event(payload=payload, signature_header=signature)
    return payment_event_apply(event)


def payment_event_apply(event: WebhookEvent) -> str:
    """Settle the card order or the top-up a verified event is about, once per event id."""
    if event.type not in {EVENT_SUCCEEDED, EVENT_FAILED} or event.intent is None:
        return "ignored"
    intent = event.intent
    failed = event.type == EVENT_FAILED
    with transaction.atomic():
        try:
            # A second delivery (even one running at this very moment) waits here on the unique
            # id and is then refused by it.
            with transaction.atomic():
                record = PaymentEvent.objects.create(provider_event_id=event.id, type=event.type, intent_id=intent.id)
        except IntegrityError:
            logger.info("payment event delivered again", extra={"event_id": event.id})
            return "duplicate"
        top_up = None
        if intent_names_order(intent):
            outcome = order_card_apply(intent=intent, failed=failed)
        else:
            top_up, outcome = top_up_apply(intent=intent, failed=failed)
            if top_up is None:
                logger.warning(
                    "payment event for an unknown intent", extra={"event_id": event.id, "intent_id": intent.id}
                )
        record.top_up = top_up
        record.outcome = outcome
        record.save(update_fields=["top_up", "outcome"])
    logger.info("payment event %s: %s", event.type, outcome, extra={"event_id": event.id, "intent_id": intent.id})
    return outcome
