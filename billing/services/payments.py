"""Order payments: the charge when an order is placed, and the refund (the saga's
compensation) when a paid order is rejected, cancelled or not accepted in time.

Money moves through the balance worker over RPC, idempotently by a key derived from the
order; the order's state changes in the caller's transaction (the consumer runner's, which
also records the message), with the order row locked first so a customer's cancel and the
charge never cross. A crash anywhere leaves the order to be charged (or refunded) again under
the same key: never charged twice, never charged without being marked.

Charges come in batches under load (:func:`order_charge_many`): one query locks the batch's
orders, their debits go out together over pipelined RPC, and each order is then settled just as
a charge of its own would settle it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import LedgerEntry, Payment
from bus.catalog import BALANCE_CREDIT, BALANCE_DEBIT, ORDER_ACCEPTANCE_TIMER, PAYMENT_FAILED, PAYMENT_REFUNDED
from bus.catalog import PAYMENT_SUCCEEDED
from bus.outbox import outbox_write
from bus.rpc import RemoteError, rpc_client
from ordering.models import Order, Restaurant
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus
from passline.db import one_or_none

logger = logging.getLogger(__name__)

# The balance worker answers within milliseconds (a batch of debits within tens of them);
# past this the runner retries the messages.
RPC_TIMEOUT_SECONDS = 5.0
# The balance worker's answers that settle an order as payment_failed. Any other error is not
# an answer about the order (a fault, a key conflict): the charge is tried again later.
REFUSALS = frozenset({"insufficient_funds", "invalid_amount"})


def charge_key(order_id: int) -> str:
    return f"order:{order_id}:charge"


def refund_key(order_id: int) -> str:
    return f"order:{order_id}:refund"


def _settled(event, order: Order, reason: str = "") -> None:  # type: ignore[no-untyped-def]
    outbox_write(event=event, aggregate=f"order:{order.pk}", payload={
        "order_id": order.pk, "customer_id": order.customer_id, "restaurant_id": order.restaurant_id,
        "amount": order.total, "reason": reason})


def order_charge(*, order_id: int) -> Payment | None:
    """Charge a placed order's total to the customer's wallet and mark it paid, or mark it
    payment_failed. Does nothing for an order that is no longer waiting for payment."""
    return order_charge_many(order_ids=[order_id]).get(order_id)


@transaction.atomic
def order_charge_many(*, order_ids: Sequence[int]) -> dict[int, Payment]:
    """Charge several placed orders at once, each as :func:`order_charge` would, in the order
    given; the orders no longer waiting for payment (or named twice) are left alone.

    Raises, writing nothing, when any debit fails for another reason than a refusal or gets
    no answer: the caller tries again, and the debits' keys make the ones that did land
    return their first ledger entry, never a second movement.
    """
    # Locked in id order, so billing copies whose batches overlap (a redelivery) never deadlock.
    locked = {order.pk: order
              for order in Order.objects.select_for_update().filter(pk__in=set(order_ids)).order_by("pk")}
    # Gone, cancelled before payment, or settled by an earlier delivery: nothing to do.
    due = [locked[pk] for pk in dict.fromkeys(order_ids)
           if pk in locked and locked[pk].status == OrderStatus.PENDING_PAYMENT]
    if not due:
        return {}
    # Not select_related with the lock: FOR UPDATE on a join would lock the restaurant rows too,
    # and every order placed there would wait (its foreign-key check) while the debits go out.
    restaurants = dict(
        Restaurant.objects.filter(pk__in={order.restaurant_id for order in due}).values_list("pk", "name"))
    answers = rpc_client().call_many(BALANCE_DEBIT, [{
        "user_id": order.customer_id, "amount": order.total, "key": charge_key(order.pk),
        "kind": LedgerEntry.Kind.CHARGE, "description": f"Order #{order.pk} at {restaurants[order.restaurant_id]}",
        "order_id": order.pk,
    } for order in due], timeout=RPC_TIMEOUT_SECONDS)
    for answer in answers:
        if isinstance(answer, RemoteError) and answer.code not in REFUSALS:
            raise answer  # not an answer about this order: try the batch again later
    return {order.pk: _charge_settle(order, answer) for order, answer in zip(due, answers)}


def _charge_settle(order: Order, answer: dict[str, Any] | RemoteError) -> Payment:
    """Write what the debit's answer means for the order it was for: paid, or payment_failed."""
    if isinstance(answer, RemoteError):
        reason = "Not enough money in the wallet" if answer.code == "insufficient_funds" else answer.message
        payment = Payment.objects.create(order=order, amount=order.total, status=Payment.Status.FAILED,
                                         failure_reason=reason)
        order_transition(order_id=order.pk, to=OrderStatus.PAYMENT_FAILED, actor_kind=Actor.SYSTEM, reason=reason)
        _settled(PAYMENT_FAILED, order, reason)
        return payment
    payment = Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED,
                                     charge_entry_id=answer["entry_id"])
    order = order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM,
                             reason="Paid from the wallet")
    _settled(PAYMENT_SUCCEEDED, order)
    outbox_write(event=ORDER_ACCEPTANCE_TIMER, aggregate=f"order:{order.pk}",
                 payload={"order_id": order.pk, "paid_version": order.version})
    return payment


@transaction.atomic
def order_refund(*, order_id: int, reason: str) -> Payment | None:
    """Give a charged order's money back, once. Does nothing for an order never charged."""
    payment = one_or_none(Payment.objects.select_for_update().filter(order_id=order_id))
    if payment is None or payment.status != Payment.Status.CHARGED:
        return None  # never charged, or refunded already
    order = Order.objects.select_related("restaurant").get(pk=order_id)
    result = rpc_client().call(BALANCE_CREDIT, {
        "user_id": order.customer_id, "amount": payment.amount, "key": refund_key(order.pk),
        "kind": LedgerEntry.Kind.REFUND, "description": f"Order #{order.pk} at {order.restaurant.name} — refund: {reason}",
        "order_id": order.pk,
    }, timeout=RPC_TIMEOUT_SECONDS)
    payment.status = Payment.Status.REFUNDED
    payment.refund_entry_id = result["entry_id"]
    payment.refund_reason = reason[:255]
    payment.refunded_at = timezone.now()
    payment.save(update_fields=["status", "refund_entry", "refund_reason", "refunded_at"])
    _settled(PAYMENT_REFUNDED, order, reason)
    return payment


def order_expire_unaccepted(*, order_id: int, paid_version: int) -> Order | None:
    """The acceptance time-out: a paid order still untouched by the kitchen is rejected (and
    so refunded). Anything that happened to the order since it was paid cancels the timer."""
    with transaction.atomic():
        order = one_or_none(Order.objects.select_for_update().filter(pk=order_id))
        if order is None or order.status != OrderStatus.PAID or order.version != paid_version:
            return None
        minutes = timedelta(seconds=settings.ORDER_ACCEPT_TIMEOUT_SECONDS).total_seconds() / 60
        return order_transition(order_id=order_id, to=OrderStatus.REJECTED, actor_kind=Actor.SYSTEM,
                                reason=f"Not accepted by the kitchen within {minutes:g} minutes")


REFUND_REASONS = {
    OrderStatus.REJECTED.value: "rejected by the kitchen",
    OrderStatus.CANCELLED.value: "cancelled",
}
