"""The notifier: tells customers about their orders by the channels they chose.

Two steps, both on the ``customer`` exchange:

* ``notifier.plan`` takes what a customer is told about (order steps and refunds, which reach
  ``customer`` from their own exchanges by exchange-to-exchange bindings, and sign-ups) and
  plans a notification per chosen channel: a row of the delivery log, once per customer, step
  and channel, and a ``customer.notify.<channel>`` command through the outbox.
* ``notifier.email``, ``notifier.sms`` and ``notifier.push`` deliver those commands, one queue
  per channel: a failing SMS provider retries (and at last dead-letters) on its own queue
  while emails and toasts go on. Each takes one message at a time (``max_batch=1``): a send
  cannot be rolled back with a batch.
"""

from __future__ import annotations

from django.conf import settings

from billing.events import PAYMENT_REFUNDED
from bus.catalog import Exchange
from bus.correlation import Trace, traced
from bus.handlers import EventHandler, Message, register
from live.groups import customer_group
from live.layer import GroupSender
from live.presence import watched_orders
from notifications.delivery import Sent, Skipped, send_email, send_sms
from notifications.events import CUSTOMER_NOTIFY
from notifications.models import Notification
from notifications.services import (
    NO_PAGE_OPEN,
    Step,
    notification_deliver,
    notification_failed,
    notifications_plan_order_steps,
    notifications_plan_welcome,
)
from notifications.toasts import toast_frame
from ordering.events import CUSTOMER_REGISTERED, ORDER_STATUS_CHANGED

sender = GroupSender()


class LiveToasts:
    """Toasts through each customer's group on the channel layer (notifications/toasts.py), to
    the pages open at the send: the plan's own read of who is online is older than its commit,
    and a page closed meanwhile must be recorded as not told."""

    def __init__(self, group_sender: GroupSender) -> None:
        self.sender = group_sender

    def address(self, customer_id: int) -> str:
        return customer_group(customer_id)

    def send(self, toasts: list[Notification]) -> set[int]:
        pairs = [(customer_group(n.customer_id), toast_frame(n)) for n in toasts]
        groups = self.sender.send(pairs)
        return {n.customer_id for n in toasts if customer_group(n.customer_id) in groups}


LIVE_TOASTS = LiveToasts(sender)


def plan(message: Message) -> None:
    plan_batch([message])


def plan_batch(messages: list[Message]) -> list[None]:
    """Plan the notifications of a batch of steps and sign-ups: the steps' orders read
    together, who is online and who watches found in one Redis round trip each; each step
    planned under its own message's trace."""
    steps = [m for m in messages if m.event is not CUSTOMER_REGISTERED]
    # Whether a page of theirs is open now: a toast for nobody is not worth a command, a relay
    # publish, an audit row and a delivery (the push worker checks again when it delivers). The
    # toasts read the groups again once the plan commits: a page closed meanwhile is not told.
    online = set(sender.members(customer_group(m.payload.customer_id) for m in steps))
    watched = watched_orders(sorted({m.payload.order_id for m in steps}))
    notifications_plan_order_steps(
        toasts=LIVE_TOASTS,
        steps=[
            Step(
                order_id=m.payload.order_id,
                step="refunded" if m.event is PAYMENT_REFUNDED else m.payload.status,
                watching=m.payload.order_id in watched,
                online=customer_group(m.payload.customer_id) in online,
                amount=m.payload.amount if m.event is PAYMENT_REFUNDED else None,
                reason=m.payload.reason,
                trace=Trace.of(m.envelope),
            )
            for m in steps
        ],
    )
    for message in messages:
        if message.event is CUSTOMER_REGISTERED:
            with traced(Trace.of(message.envelope)):
                notifications_plan_welcome(customer_id=message.payload.customer_id)
    return [None] * len(messages)


def send_push(notification: Notification) -> Sent | Skipped:
    """A toast on every open page of the customer's (and the browser's own notification when
    the page is hidden and they allowed it): through their group, to the sockets open now.
    The planner sends a step's toasts itself (notifications/toasts.py); this road takes a
    resent toast, and one the planner could not send."""
    group = customer_group(notification.customer_id)
    if not sender.send([(group, toast_frame(notification))]):
        return Skipped(NO_PAGE_OPEN)
    return Sent(provider_id=group)


SENDERS = {
    Notification.Channel.EMAIL.value: send_email,
    Notification.Channel.SMS.value: send_sms,
    Notification.Channel.PUSH.value: send_push,
}


def deliver(message: Message) -> None:
    notification_deliver(
        notification_id=message.payload.notification_id, attempt=message.attempt, send=SENDERS[message.payload.channel]
    )


def failed(message: Message, reason: str, final: bool) -> None:
    notification_failed(
        notification_id=message.payload.notification_id, attempt=message.attempt, reason=reason, final=final
    )


notifier_plan = register(
    EventHandler(
        queue="notifier.plan",
        events=[ORDER_STATUS_CHANGED, PAYMENT_REFUNDED, CUSTOMER_REGISTERED],
        handler=plan,
        # What is waiting is planned together (no linger: a customer waits for the toast).
        batch_handler=plan_batch,
        max_batch=50,
        prefetch=100,
        quick=True,  # the database and Redis
        # Only what reaches the customer exchange (notifications/events.py CUSTOMER_FEEDS), not
        # every status change of the notification exchange.
        bind_events=False,
        bindings=[
            (Exchange.CUSTOMER, ORDER_STATUS_CHANGED.binding()[1]),
            (Exchange.CUSTOMER, PAYMENT_REFUNDED.binding()[1]),
            CUSTOMER_REGISTERED.binding(),
        ],
    )
)


def _delivery(channel: str) -> EventHandler:
    return register(
        EventHandler(
            queue=f"notifier.{channel}",
            # A toast is Redis alone; an email or a text waits on its provider.
            quick=channel == Notification.Channel.PUSH,
            events=[CUSTOMER_NOTIFY],
            handler=deliver,
            on_failure=failed,
            bind_events=False,
            bindings=[CUSTOMER_NOTIFY.binding(channel=channel)],
            max_batch=1,
            prefetch=20,
            retry_delays=settings.NOTIFIER_RETRY_DELAYS,
        )
    )


notifier_email = _delivery(Notification.Channel.EMAIL.value)
notifier_sms = _delivery(Notification.Channel.SMS.value)
notifier_push = _delivery(Notification.Channel.PUSH.value)
