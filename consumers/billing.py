"""The billing worker: charges placed orders, refunds the ones that end unserved, rejects
paid orders the kitchen does not accept in time, and asks the payment provider for the intent
of each top-up the web recorded (so that no web request waits on the provider)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from django.conf import settings

from billing.events import ORDER_ACCEPTANCE_TIMER, TOP_UP_REQUESTED
from billing.services.payments import (
    REFUND_REASONS,
    order_charge,
    order_charge_many,
    order_expire_unaccepted,
    order_expire_unaccepted_many,
    order_refund,
    order_refund_many,
)
from billing.services.topups import top_up_prepare, top_up_unreachable
from bus.correlation import Trace, batch_traces, first_traces
from bus.handlers import EventHandler, Message, Timer, register
from ordering.events import ORDER_PLACED, ORDER_STATUS_CHANGED


def _per_order(messages: list[Message]) -> AbstractContextManager[None]:
    """Each order's work in the batch runs under its message's trace (the first, like the services)."""
    return batch_traces(first_traces([(m.payload.order_id, Trace.of(m.envelope)) for m in messages]))


def charge(message: Message) -> None:
    """order.placed: charge the wallet (RPC to the balance worker), mark paid or payment_failed."""
    order_charge(order_id=message.payload.order_id)


def charge_many(messages: list[Message]) -> list[None]:
    """A batch of order.placed: the same, with the batch's debits sent together (pipelined RPC)."""
    with _per_order(messages):
        order_charge_many(order_ids=[message.payload.order_id for message in messages])
    return [None] * len(messages)


def _refund_reason(message: Message) -> str:
    p = message.payload
    return p.reason or REFUND_REASONS.get(p.status, p.status)


def refund(message: Message) -> None:
    """A paid order was rejected or cancelled: give the money back, once."""
    order_refund(order_id=message.payload.order_id, reason=_refund_reason(message))


def refund_many(messages: list[Message]) -> list[None]:
    """A batch of rejections and cancellations: the same, the credits sent together."""
    with _per_order(messages):
        order_refund_many(refunds=[(message.payload.order_id, _refund_reason(message)) for message in messages])
    return [None] * len(messages)


def expire(message: Message) -> None:
    """The acceptance time-out ran out: reject the order if the kitchen never touched it."""
    order_expire_unaccepted(order_id=message.payload.order_id, paid_version=message.payload.paid_version)


def expire_many(messages: list[Message]) -> list[None]:
    """A batch of acceptance time-outs (a backlog when the kitchen is away): one lock query."""
    with _per_order(messages):
        order_expire_unaccepted_many(timers=[(m.payload.order_id, m.payload.paid_version) for m in messages])
    return [None] * len(messages)


def prepare_top_up(message: Message) -> None:
    """top_up.requested: the provider's intent for a pending top-up (through the payment
    breaker; its failure or the breaker open is retried)."""
    top_up_prepare(top_up_id=message.payload.top_up_id, return_url=message.payload.return_url)


def top_up_failed(message: Message, reason: str, final: bool) -> None:
    """The provider could not be reached: after the last attempt the top-up is declined."""
    if final:
        top_up_unreachable(top_up_id=message.payload.top_up_id, reason=reason)


# Charges are batched although each calls the balance worker, an effect outside the batch's
# transaction: a batch that fails after its debits went out (a fault, a timeout) is retried
# one message at a time, and each debit's key returns its first ledger entry, a round trip
# and never a second movement. Up to 20 a batch (no linger: a customer waits for the
# payment), twice that prefetched so that the next batch is in when one ends.
billing_order_placed = register(
    EventHandler(
        queue="billing.order_placed",
        events=[ORDER_PLACED],
        handler=charge,
        batch_handler=charge_many,
        max_batch=20,
        prefetch=40,
        quick=True,  # the database and the balance RPC (5 s time-out)
    )
)
# Refunds and acceptance time-outs are rare next to charges, but come in bursts (a kitchen
# that stops accepting: every paid order's timer runs out, each rejection is a refund), so they
# batch like charges: refunds' credits are keyed like debits (a batch retried one by one only
# repeats round trips), the timers' effects are the database's alone.
billing_refunds = register(
    EventHandler(
        queue="billing.refunds",
        events=[ORDER_STATUS_CHANGED],
        handler=refund,
        batch_handler=refund_many,
        max_batch=20,
        prefetch=40,
        bind_events=False,
        bindings=[ORDER_STATUS_CHANGED.binding(status="rejected"), ORDER_STATUS_CHANGED.binding(status="cancelled")],
        quick=True,
    )
)
billing_acceptance_timeout = register(
    Timer(
        queue="billing.acceptance_timeout",
        events=[ORDER_ACCEPTANCE_TIMER],
        handler=expire,
        batch_handler=expire_many,
        max_batch=50,
        prefetch=100,
        delay_seconds=settings.ORDER_ACCEPT_TIMEOUT_SECONDS,
        quick=True,
    )
)
# One provider call per message (an effect outside the database: no batches), retried for
# longer than the payment breaker stays open (TOP_UP_RETRY_DELAYS), then the top-up is declined.
billing_top_ups = register(
    EventHandler(
        queue="billing.top_ups",
        events=[TOP_UP_REQUESTED],
        handler=prepare_top_up,
        on_failure=top_up_failed,
        max_batch=1,
        prefetch=10,
        retry_delays=settings.TOP_UP_RETRY_DELAYS,
        # A provider call gives up after PAYMENT_PROVIDER_TIMEOUT: far less than this.
        timeout=120.0,
    )
)
