"""Orders paid by card through the payment provider, in one step at checkout.

A card order is placed like any other (``pending_payment``, stock reserved) but billing's
``order.placed`` handling leaves it alone: :func:`order_card_start` asks the provider for an
intent of exactly the order's total, with the order named in its metadata, and the customer
confirms it on the provider's page. The provider's signed webhook then settles the order through
:func:`order_card_apply` (called by billing/services/webhooks.py for an intent whose metadata
names an order), which writes the same payment row, status step and events (``payment.succeeded`` and the
acceptance timer, or ``payment.failed``) as a wallet charge, so notifications, the kitchen,
receipts and analytics see no difference.

Exactly once: each webhook event is recorded once (``PaymentEvent``'s unique id), the order row
is locked first, and an order is settled only while ``pending_payment``. Money that arrives for an
order no longer payable (cancelled, failed after a decline, or paid already by another event) is
refunded to the customer's wallet, once per intent (its ledger key), and recorded on the order's
payment row as ``refunded``: the provider interface has no refunds, and the wallet is where every
other refund of Passline goes.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from billing.events import PAYMENT_FAILED, PAYMENT_REFUNDED
from billing.exceptions import BillingError
from billing.models import LedgerEntry, Payment
from billing.provider import SUCCEEDED, PaymentIntent, payment_provider
from billing.services.availability import PROVIDER_DOWN, payments_refuse_while_unavailable, provider_unavailable
from billing.services.settlement import orders_mark_paid, payment_event_write
from billing.services.wallets import wallet_credit
from ordering.exceptions import NotFound
from ordering.models import Order
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus
from passline.breakers import PAYMENT, guarded
from passline.db import one_or_none

logger = logging.getLogger(__name__)

METADATA_KEY = "order_id"
DECLINED_REASON = "Your card was declined"


def intent_key(order_id: int) -> str:
    """The provider's idempotency key of an order's intent: one intent per order."""
    return f"passline-order-{order_id}"


def late_refund_key(order_id: int, intent_id: str) -> str:
    return f"order:{order_id}:card-refund:{intent_id}"


def order_card_start(*, order_id: int, customer_id: int, return_url: str) -> PaymentIntent:
    """The provider's intent for a card order still waiting for payment (the same one however
    often this is asked): its ``confirmation_url`` is where the customer enters the card.
    NotFound for another customer's order; BillingError for an order not paid by card or no
    longer payable; ProviderUnavailable while the provider is down."""
    order = one_or_none(Order.objects.filter(pk=order_id, customer_id=customer_id))
    if order is None:
        raise NotFound("There is no such order.")
    if order.payment_method != Order.PaymentMethod.CARD:
        raise BillingError("This order is paid from the wallet.", code="not_a_card_order")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise BillingError("This order is no longer waiting for payment.", code="not_payable")
    payments_refuse_while_unavailable()
    provider = payment_provider()
    try:
        intent = guarded(
            PAYMENT,
            "create_intent",
            lambda: provider.create_intent(
                amount=order.total,
                currency=order.currency,
                idempotency_key=intent_key(order.pk),
                metadata={METADATA_KEY: str(order.pk), "user_id": str(order.customer_id)},
                return_url=return_url,
            ),
            refusals=(BillingError,),
        )
    except PROVIDER_DOWN as error:
        raise provider_unavailable(error) from error
    logger.info("card order intent", extra={"order_id": order.pk, "intent_id": intent.id})
    return intent


def intent_names_order(intent: PaymentIntent) -> bool:
    """Whether an intent is an order's (its metadata names one) rather than a top-up's."""
    return bool(intent.metadata.get(METADATA_KEY))


def order_id_of(intent: PaymentIntent) -> int | None:
    raw = intent.metadata.get(METADATA_KEY, "")
    return int(raw) if raw.isdigit() else None


def order_card_apply(*, intent: PaymentIntent, failed: bool) -> str:
    """Settle the card order an intent pays (inside the caller's transaction, which recorded
    the event): paid, payment_failed, or the money refunded to the wallet; what was done."""
    order_id = order_id_of(intent)
    order = one_or_none(Order.objects.select_for_update().filter(pk=order_id)) if order_id else None
    if order is None or order.payment_method != Order.PaymentMethod.CARD:
        logger.warning("card payment for an unknown order", extra={"intent_id": intent.id, "order_id": order_id})
        return "unknown order"
    if intent.amount != order.total or intent.currency.upper() != order.currency:
        logger.error("card payment does not match its order", extra={"order_id": order.pk, "intent_id": intent.id})
        return "amount mismatch"
    payment = one_or_none(Payment.objects.select_for_update().filter(order=order))
    if intent.status == SUCCEEDED:
        if order.status == OrderStatus.PENDING_PAYMENT and payment is None:
            _paid(order, intent)
            return "order paid"
        if payment is not None and payment.provider_intent_id == intent.id and payment.status != Payment.Status.FAILED:
            return "already paid" if payment.status == Payment.Status.CHARGED else "already refunded"
        return _refund_late(order, payment, intent)
    if failed or intent.last_error:
        if order.status != OrderStatus.PENDING_PAYMENT or payment is not None:
            return "ignored: order settled"
        reason = DECLINED_REASON if not intent.last_error else intent.last_error.rstrip(".")
        Payment.objects.create(
            order=order,
            amount=order.total,
            status=Payment.Status.FAILED,
            failure_reason=reason[:255],
            provider_intent_id=intent.id,
            card_last4=intent.card_last4,
        )
        order_transition(order_id=order.pk, to=OrderStatus.PAYMENT_FAILED, actor_kind=Actor.SYSTEM, reason=reason)
        payment_event_write(PAYMENT_FAILED, order, reason)
        return "order payment failed"
    return "pending"


def _paid(order: Order, intent: PaymentIntent) -> None:
    """Mark a locked card order paid exactly as a wallet charge does (billing/services/settlement.py)."""
    Payment.objects.create(
        order=order,
        amount=order.total,
        status=Payment.Status.CHARGED,
        provider_intent_id=intent.id,
        card_last4=intent.card_last4,
    )
    ending = f" ending {intent.card_last4}" if intent.card_last4 else ""
    orders_mark_paid(orders=[order], reason=f"Paid by card{ending}")


def _refund_late(order: Order, payment: Payment | None, intent: PaymentIntent) -> str:
    """The card paid for an order no longer payable: the money goes to the customer's wallet,
    once per intent, and the order's payment row says so."""
    reason = f"card payment arrived after the order was {order.get_status_display().lower()}"
    entry = wallet_credit(
        user_id=order.customer_id,
        amount=order.total,
        kind=LedgerEntry.Kind.REFUND,
        key=late_refund_key(order.pk, intent.id),
        description=f"Order #{order.pk} — refund of a late card payment",
        order_id=order.pk,
    )
    if payment is None:
        payment = Payment(order=order, amount=order.total)
    payment.status = Payment.Status.REFUNDED
    payment.provider_intent_id = intent.id
    payment.card_last4 = intent.card_last4
    payment.refund_entry = entry
    payment.refund_reason = reason[:255]
    payment.refunded_at = timezone.now()
    payment.save()
    payment_event_write(PAYMENT_REFUNDED, order, reason)
    logger.warning("late card payment refunded to the wallet", extra={"order_id": order.pk, "intent_id": intent.id})
    return "refunded to wallet"
