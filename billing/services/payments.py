"""Order payments: the charge when an order is placed, and the refund (the saga's
compensation) when a paid order is rejected, cancelled or not accepted in time.

Money moves through the balance worker over RPC, idempotently by a key derived from the
order; the order's state changes in the caller's transaction (the consumer runner's, which
also records the message; no savepoint of their own: whatever they raise rolls that
transaction back, and a savepoint would cost two statements a handling), with the order row locked first so a customer's cancel and the
charge never cross. A crash anywhere leaves the order to be charged (or refunded) again under
the same key: never charged twice, never charged without being marked.

Charges come in batches under load (:func:`order_charge_many`): one query locks the batch's
orders, their debits go out together over pipelined RPC, and each order is then settled just as
a charge of its own would settle it. Refunds and acceptance time-outs batch the same way
(:func:`order_refund_many`, :func:`order_expire_unaccepted_many`): a backlog of timers (the
kitchen away) rejects and refunds many orders a transaction, each exactly as alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.events import BALANCE_CREDIT, BALANCE_DEBIT, PAYMENT_FAILED, PAYMENT_REFUNDED
from billing.models import LedgerEntry, Payment
from billing.services.settlement import orders_mark_paid, payment_event_write
from bus.correlation import trace_of, traced
from bus.rpc import RemoteError, rpc_client
from ordering.models import Order, Restaurant
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus

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


def order_charge(*, order_id: int) -> Payment | None:
    """Charge a placed order's total to the customer's wallet and mark it paid, or mark it
    payment_failed. Does nothing for an order that is no longer waiting for payment."""
    return order_charge_many(order_ids=[order_id]).get(order_id)


@transaction.atomic(savepoint=False)
def order_charge_many(*, order_ids: Sequence[int]) -> dict[int, Payment]:
    """Charge several placed orders at once, each as :func:`order_charge` would, in the order
    given; the orders no longer waiting for payment (or named twice) are left alone.

    Raises, writing nothing, when any debit fails for another reason than a refusal or gets
    no answer: the caller tries again, and the debits' keys make the ones that did land
    return their first ledger entry, never a second movement.
    """
    # Locked in id order, so billing copies whose batches overlap (a redelivery) never deadlock.
    locked = {
        order.pk: order for order in Order.objects.select_for_update().filter(pk__in=set(order_ids)).order_by("pk")
    }
    # Gone, cancelled before payment, or settled by an earlier delivery: nothing to do. A card
    # order never touches the wallet: the provider's webhook pays it (billing/services/card_payments.py).
    due = [
        locked[pk]
        for pk in dict.fromkeys(order_ids)
        if pk in locked
        and locked[pk].status == OrderStatus.PENDING_PAYMENT
        and locked[pk].payment_method == Order.PaymentMethod.WALLET
    ]
    if not due:
        return {}
    # Not select_related with the lock: FOR UPDATE on a join would lock the restaurant rows too,
    # and every order placed there would wait (its foreign-key check) while the debits go out.
    restaurants = dict(
        Restaurant.objects.filter(pk__in={order.restaurant_id for order in due}).values_list("pk", "name")
    )
    answers = rpc_client().call_many(
        BALANCE_DEBIT,
        [
            {
                "user_id": order.customer_id,
                "amount": order.total,
                "key": charge_key(order.pk),
                "kind": LedgerEntry.Kind.CHARGE,
                "description": f"Order #{order.pk} at {restaurants[order.restaurant_id]}",
                "order_id": order.pk,
            }
            for order in due
        ],
        timeout=RPC_TIMEOUT_SECONDS,
        traces=[trace_of(order.pk) for order in due],
    )
    for answer in answers:
        if isinstance(answer, RemoteError) and answer.code not in REFUSALS:
            raise answer  # not an answer about this order: try the batch again later
    return _charge_settle(due, answers)


def _charge_settle(due: list[Order], answers: list[dict[str, Any] | RemoteError]) -> dict[int, Payment]:
    """Write what each debit's answer means for its order (locked, waiting for payment): paid,
    with its payment, its events and its acceptance timer; or payment_failed. The paid ones
    share each statement: one INSERT of payments, one UPDATE of orders, one of their steps,
    one of their outbox events."""
    payments = Payment.objects.bulk_create(
        [
            Payment(order=order, amount=order.total, status=Payment.Status.CHARGED, charge_entry_id=answer["entry_id"])
            if not isinstance(answer, RemoteError)
            else Payment(order=order, amount=order.total, status=Payment.Status.FAILED, failure_reason=_refusal(answer))
            for order, answer in zip(due, answers)
        ]
    )
    paid = [order for order, answer in zip(due, answers) if not isinstance(answer, RemoteError)]
    orders_mark_paid(orders=paid, reason="Paid from the wallet")
    for order, answer in zip(due, answers):
        if isinstance(answer, RemoteError):
            with traced(trace_of(order.pk)):
                order_transition(
                    order_id=order.pk, to=OrderStatus.PAYMENT_FAILED, actor_kind=Actor.SYSTEM, reason=_refusal(answer)
                )
                payment_event_write(PAYMENT_FAILED, order, _refusal(answer))
    return {payment.order_id: payment for payment in payments}


def _refusal(answer: RemoteError) -> str:
    return "Not enough money in the wallet" if answer.code == "insufficient_funds" else answer.message


def order_refund(*, order_id: int, reason: str) -> Payment | None:
    """Give a charged order's money back, once. Does nothing for an order never charged."""
    return order_refund_many(refunds=[(order_id, reason)]).get(order_id)


@transaction.atomic(savepoint=False)
def order_refund_many(*, refunds: Sequence[tuple[int, str]]) -> dict[int, Payment]:
    """Refund several orders ``(order_id, reason)`` at once, each as :func:`order_refund`
    would (an order named twice once, with its first reason); the payments refunded, by order.

    The payments are locked in order-id order and only charged ones are refunded, so a second
    refund of an order finds it refunded; the credits go out together over pipelined RPC under
    each order's refund key. Raises, writing nothing, when any credit is refused or unanswered:
    the caller tries again, and the credits that landed return their first ledger entry.
    """
    reasons: dict[int, str] = {}
    for order_id, reason in refunds:
        reasons.setdefault(order_id, reason)
    # Never charged, or refunded already: nothing to do for those.
    payments = list(
        Payment.objects.select_for_update()
        .filter(order_id__in=set(reasons), status=Payment.Status.CHARGED)
        .order_by("order_id")
    )
    if not payments:
        return {}
    orders = Order.objects.select_related("restaurant").in_bulk([payment.order_id for payment in payments])
    answers = rpc_client().call_many(
        BALANCE_CREDIT,
        [
            {
                "user_id": orders[p.order_id].customer_id,
                "amount": p.amount,
                "key": refund_key(p.order_id),
                "kind": LedgerEntry.Kind.REFUND,
                "description": f"Order #{p.order_id} at {orders[p.order_id].restaurant.name} — refund: {reasons[p.order_id]}",
                "order_id": p.order_id,
            }
            for p in payments
        ],
        timeout=RPC_TIMEOUT_SECONDS,
        traces=[trace_of(p.order_id) for p in payments],
    )
    for answer in answers:
        if isinstance(answer, RemoteError):
            raise answer
    now = timezone.now()
    for payment, answer in zip(payments, answers):
        reason = reasons[payment.order_id]
        payment.status = Payment.Status.REFUNDED
        payment.refund_entry_id = answer["entry_id"]
        payment.refund_reason = reason[:255]
        payment.refunded_at = now
        with traced(trace_of(payment.order_id)):
            payment.save(update_fields=["status", "refund_entry", "refund_reason", "refunded_at"])
            payment_event_write(PAYMENT_REFUNDED, orders[payment.order_id], reason)
    return {payment.order_id: payment for payment in payments}


def order_expire_unaccepted(*, order_id: int, paid_version: int) -> Order | None:
    """The acceptance time-out: a paid order still untouched by the kitchen is rejected (and
    so refunded). Anything that happened to the order since it was paid cancels the timer."""
    return order_expire_unaccepted_many(timers=[(order_id, paid_version)]).get(order_id)


@transaction.atomic(savepoint=False)
def order_expire_unaccepted_many(*, timers: Sequence[tuple[int, int]]) -> dict[int, Order]:
    """Several acceptance time-outs ``(order_id, paid_version)`` at once, each as
    :func:`order_expire_unaccepted` would decide it; the orders rejected, by id."""
    # Locked in id order, like charges, so batches that overlap (a redelivery) never deadlock.
    locked = {
        order.pk: order
        for order in Order.objects.select_for_update()
        .filter(pk__in={order_id for order_id, _ in timers})
        .order_by("pk")
    }
    minutes = timedelta(seconds=settings.ORDER_ACCEPT_TIMEOUT_SECONDS).total_seconds() / 60
    rejected: dict[int, Order] = {}
    for order_id, paid_version in timers:
        order = locked.get(order_id)
        if order is None or order_id in rejected or order.status != OrderStatus.PAID or order.version != paid_version:
            continue
        with traced(trace_of(order_id)):
            rejected[order_id] = order_transition(
                order_id=order_id,
                to=OrderStatus.REJECTED,
                actor_kind=Actor.SYSTEM,
                reason=f"Not accepted by the kitchen within {minutes:g} minutes",
            )
    return rejected


REFUND_REASONS = {
    OrderStatus.REJECTED.value: "rejected by the kitchen",
    OrderStatus.CANCELLED.value: "cancelled",
}
