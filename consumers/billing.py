"""The billing worker: charges placed orders, refunds the ones that end unserved, and
rejects paid orders the kitchen does not accept in time."""

from __future__ import annotations

from django.conf import settings

from billing.services.payments import REFUND_REASONS, order_charge, order_charge_many, order_expire_unaccepted
from billing.services.payments import order_refund
from bus.catalog import ORDER_ACCEPTANCE_TIMER, ORDER_PLACED, ORDER_STATUS_CHANGED
from bus.consumer import Consumer, Message, register


def charge(message: Message) -> None:
    """order.placed: charge the wallet (RPC to the balance worker), mark paid or payment_failed."""
    order_charge(order_id=message.payload.order_id)


def charge_many(messages: list[Message]) -> list[None]:
    """A batch of order.placed: the same, with the batch's debits sent together (pipelined RPC)."""
    order_charge_many(order_ids=[message.payload.order_id for message in messages])
    return [None] * len(messages)


def refund(message: Message) -> None:
    """A paid order was rejected or cancelled: give the money back, once."""
    p = message.payload
    reason = p.reason or REFUND_REASONS.get(p.status, p.status)
    order_refund(order_id=p.order_id, reason=reason)


def expire(message: Message) -> None:
    """The acceptance time-out ran out: reject the order if the kitchen never touched it."""
    order_expire_unaccepted(order_id=message.payload.order_id, paid_version=message.payload.paid_version)


# Charges are batched although each calls the balance worker, an effect outside the batch's
# transaction: a batch that fails after its debits went out (a fault, a timeout) is retried
# one message at a time, and each debit's key returns its first ledger entry, a round trip
# and never a second movement. Up to 20 a batch (no linger: a customer waits for the
# payment), twice that prefetched so that the next batch is in when one ends.
billing_order_placed = register(Consumer(
    queue="billing.order_placed", events=[ORDER_PLACED], handler=charge, batch_handler=charge_many,
    max_batch=20, prefetch=40,
))
# Refunds and the acceptance timer are rare next to charges: one message per transaction.
billing_refunds = register(Consumer(
    queue="billing.refunds", events=[ORDER_STATUS_CHANGED], handler=refund, max_batch=1, prefetch=20,
    bind_events=False,
    bindings=[("notification", "order.status.rejected"), ("notification", "order.status.cancelled")],
))
billing_acceptance_timeout = register(Consumer(
    queue="billing.acceptance_timeout", events=[ORDER_ACCEPTANCE_TIMER], handler=expire, max_batch=1,
    delay_seconds=settings.ORDER_ACCEPT_TIMEOUT_SECONDS,
))
