"""What settling an order's payment writes, however it was paid (from the wallet by
billing/services/payments.py, by card by billing/services/card_payments.py): the status step,
``payment.succeeded`` / ``payment.failed`` / ``payment.refunded`` and the acceptance timer, so
the kitchen, notifications, receipts and analytics see no difference between the two.
"""

from __future__ import annotations

from billing.events import ORDER_ACCEPTANCE_TIMER, PAYMENT_SUCCEEDED
from bus.catalog import EventType
from bus.correlation import trace_of, traced
from bus.outbox import Pending, outbox_write_many
from ordering.models import Order
from ordering.services import order_move_many
from ordering.status import Actor, OrderStatus, check_transition


def payment_event(event: EventType, order: Order, reason: str = "") -> Pending:
    """A payment event of an order, under the trace of the order's message when in a batch
    (bus/correlation.py)."""
    with traced(trace_of(order.pk)):
        return Pending(
            event=event,
            aggregate=f"order:{order.pk}",
            payload={
                "order_id": order.pk,
                "customer_id": order.customer_id,
                "restaurant_id": order.restaurant_id,
                "amount": order.total,
                "reason": reason,
            },
        )


def payment_event_write(event: EventType, order: Order, reason: str = "") -> None:
    """Write a payment event of an order to the outbox, in the caller's transaction."""
    outbox_write_many([payment_event(event, order, reason)])


def acceptance_timer_event(order: Order) -> Pending:
    """The order's acceptance timer, carrying the version the order has once paid: built before
    the order moves to paid."""
    with traced(trace_of(order.pk)):
        return Pending(
            event=ORDER_ACCEPTANCE_TIMER,
            aggregate=f"order:{order.pk}",
            payload={"order_id": order.pk, "paid_version": order.version + 1},
        )


def orders_mark_paid(*, orders: list[Order], reason: str) -> None:
    """Move orders the caller holds locked (waiting for payment, their payments recorded) to
    paid: one status step each, with ``payment.succeeded`` and the acceptance timer in the same
    statements."""
    for order in orders:
        check_transition(order.status, OrderStatus.PAID, Actor.SYSTEM)
    # The timers are built before the move: they carry the version order_move_many writes.
    events = [
        event for order in orders for event in (payment_event(PAYMENT_SUCCEEDED, order), acceptance_timer_event(order))
    ]
    order_move_many(orders=orders, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM, reason=reason, extra_events=events)
