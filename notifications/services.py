"""The notifier's writes: plan what to tell a customer and by which channels, deliver one
planned notification, record a failure, resend from the admin.

Planning and delivery are two steps with a message between them (``customer.notify.<channel>``,
written to the outbox with the plan): the plan commits once per customer, step and channel
(the unique ``key``), and each channel's deliveries retry on their own queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.template import Context, Template
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from bus.correlation import get_correlation_id
from bus.outbox import Pending, outbox_write_many
from notifications.delivery import Sent, Skipped
from notifications.events import CUSTOMER_NOTIFY
from notifications.models import Notification
from ordering.models import CustomerProfile, Order
from passline.db import one_or_none

logger = logging.getLogger(__name__)
User = get_user_model()

Channel = Notification.Channel
Status = Notification.Status

# The order steps a customer is told about, by the status the order reached.
STEP_MESSAGES = {
    "paid": "order_paid",
    "accepted": "order_accepted",
    "ready": "order_ready",
    "out_for_delivery": "order_out_for_delivery",
    "delivered": "order_delivered",
    "payment_failed": "order_payment_failed",
}
REFUNDED = "order_refunded"
NO_PAGE_OPEN = "no page of the site open"
WELCOME = "welcome"
# The channels each message has a template for (templates/notifications/<message>.<channel>.txt).
CHANNELS: dict[str, tuple[Channel, ...]] = {
    **dict.fromkeys([*STEP_MESSAGES.values(), REFUNDED], (Channel.EMAIL, Channel.SMS, Channel.PUSH)),
    WELCOME: (Channel.EMAIL, Channel.SMS),
}


@dataclass(frozen=True)
class Rendered:
    subject: str  # the email's subject, the push notification's title; blank for SMS
    body: str


def render(message: str, channel: str, context: dict[str, Any]) -> Rendered:
    """One template per message and channel. Email and push: the first line is the subject
    (the title), the rest after a blank line the body. SMS: all of it is the text."""
    # The engine's own template (not the backend's wrapper): its render takes a Context, here one
    # without autoescape, since these are plain-text messages.
    template: Template = get_template(f"notifications/{message}.{channel}.txt").template  # type: ignore[attr-defined]
    text = template.render(Context(context, autoescape=False)).strip()
    if channel == Channel.SMS:
        return Rendered(subject="", body=" ".join(text.split()))
    subject, _, body = text.partition("\n")
    return Rendered(subject=subject.strip(), body=body.strip())


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


@dataclass
class _Plan:
    customer: Any
    message: str
    key: str  # without the channel
    context: dict[str, Any]
    order: Order | None = None
    link: str = ""
    skip_email_sms: str = ""  # a reason not to email or text this step
    skip_push: str = ""  # a reason not to show it in the browser


@dataclass(frozen=True)
class Step:
    """An order step to tell its customer about (see :func:`notifications_plan_order_steps`)."""

    order_id: int
    step: str
    watching: bool
    online: bool = True
    amount: Decimal | None = None
    reason: str = ""


def notifications_plan_order_step(
    *, order_id: int, step: str, watching: bool, online: bool = True, amount: Decimal | None = None, reason: str = ""
) -> list[Notification]:
    """Plan the customer's notifications of an order step (a status in STEP_MESSAGES, or
    "refunded"): a row per chosen channel, each once ever, and a delivery command for each.

    ``watching``: the customer has the order's tracking page open and visible now. Then no
    email or SMS goes out for the step, unless their profile asks for them all the same.
    ``online``: some page of the site is open for them; if none is, the browser notification
    is logged as not sent now rather than queued to find nobody.
    """
    return notifications_plan_order_steps([Step(order_id, step, watching, online, amount, reason)])


def _step_message(step: str) -> str | None:
    return REFUNDED if step == "refunded" else STEP_MESSAGES.get(step)


def notifications_plan_order_steps(steps: list[Step]) -> list[Notification]:
    """:func:`notifications_plan_order_step` for many steps at once: their orders (with the
    customers and profiles) read in one query, their rows written in one."""
    steps = [step for step in steps if _step_message(step.step) is not None]
    if not steps:
        return []
    # The dishes stay a lazy query per order: only the paid email's template reads them, and
    # prefetching them for every step (accepted, ready, …) would be a query nobody reads.
    orders = Order.objects.select_related("restaurant", "customer", "customer__profile").in_bulk(
        {step.order_id for step in steps}
    )
    orders_link, wallet_link = _absolute(reverse("order_history")), _absolute(reverse("wallet"))
    candidates: list[Notification] = []
    for step in steps:
        order = orders.get(step.order_id)
        if order is None:
            logger.warning("no such order to notify about", extra={"order_id": step.order_id, "step": step.step})
            continue
        path = reverse("order_detail", args=[order.pk])
        plan = _Plan(
            customer=order.customer,
            message=_step_message(step.step) or "",
            key=f"order:{order.pk}:{step.step}",
            order=order,
            link=path,
            # (lines read only by a template that shows them)
            context={
                "order": order,
                "lines": order.lines.all(),
                "amount": step.amount if step.amount is not None else order.total,
                "reason": step.reason,
                "link": _absolute(path),
                "orders_link": orders_link,
                "wallet_link": wallet_link,
            },
        )
        if step.watching:
            plan.skip_email_sms = "watching the order live"
        if not step.online:
            plan.skip_push = NO_PAGE_OPEN
        candidates += _candidates(plan)
    return _create(candidates)


def notifications_plan_welcome(*, customer_id: int) -> list[Notification]:
    """Welcome a new customer by the channels their profile chose (email, by default)."""
    customer = one_or_none(User.objects.select_related("profile").filter(pk=customer_id))
    if customer is None:
        return []
    return _plan(
        _Plan(
            customer=customer,
            message=WELCOME,
            key=f"welcome:{customer.pk}",
            link=reverse("restaurant_list"),
            context={"link": _absolute(reverse("restaurant_list")), "profile_link": _absolute(reverse("profile"))},
        )
    )


def _plan(plan: _Plan) -> list[Notification]:
    return _create(_candidates(plan))


def _candidates(plan: _Plan) -> list[Notification]:
    try:
        profile = plan.customer.profile  # read with the customer
    except CustomerProfile.DoesNotExist:
        profile = CustomerProfile(user=plan.customer)
    chosen = {Channel.EMAIL: profile.notify_email, Channel.SMS: profile.notify_sms, Channel.PUSH: profile.notify_push}
    addresses = {Channel.EMAIL: plan.customer.email, Channel.SMS: profile.phone, Channel.PUSH: ""}
    context = {"customer": plan.customer, **plan.context}
    candidates: list[Notification] = []
    for channel in CHANNELS[plan.message]:
        if not chosen[channel]:
            continue  # never by a channel the customer did not choose
        skip = plan.skip_push if channel == Channel.PUSH else ""
        if channel != Channel.PUSH:
            if not addresses[channel]:
                skip = "no email address" if channel == Channel.EMAIL else "no phone number"
            elif plan.skip_email_sms and not profile.notify_while_watching:
                skip = plan.skip_email_sms
        rendered = render(plan.message, channel, context)
        candidates.append(
            Notification(
                key=f"{plan.key}:{channel}",
                customer=plan.customer,
                order=plan.order,
                message=plan.message,
                channel=channel,
                recipient=addresses[channel],
                subject=rendered.subject,
                body=rendered.body,
                link=plan.link,
                status=Status.SKIPPED if skip else Status.PENDING,
                reason=skip,
                correlation_id=get_correlation_id() or "",
            )
        )
    return candidates


def _create(candidates: list[Notification]) -> list[Notification]:
    """The rows not planned before (by this event delivered twice, or by a second copy of the
    notifier), written in one statement, and a delivery command for each pending one."""
    if not candidates:
        return []
    known = set(Notification.objects.filter(key__in=[n.key for n in candidates]).values_list("key", flat=True))
    new = [n for n in candidates if n.key not in known]
    try:
        with transaction.atomic():
            Notification.objects.bulk_create(new)
    except IntegrityError:
        # A second copy planned some of them in between: each on its own, skipping those.
        new = [n for n in (_create_one(n) for n in new) if n is not None]
    outbox_write_many([_command(n) for n in new if n.status == Status.PENDING])
    for notification in new:
        logger.info(
            "notification planned",
            extra={
                "notification_id": notification.pk,
                "key": notification.key,
                "status": notification.status,
                "reason": notification.reason,
            },
        )
    return new


def _create_one(notification: Notification) -> Notification | None:
    notification.pk = None
    try:
        with transaction.atomic():
            notification.save(force_insert=True)
    except IntegrityError:
        return None
    return notification


def _command(notification: Notification) -> Pending:
    return Pending(
        event=CUSTOMER_NOTIFY,
        aggregate=f"customer:{notification.customer_id}",
        payload={
            "notification_id": notification.pk,
            "customer_id": notification.customer_id,
            "channel": notification.channel,
        },
    )


def _enqueue(notification: Notification) -> None:
    outbox_write_many([_command(notification)])


# No savepoint: a worker calls it inside the transaction that records the message, and
# any failure rolls that whole transaction back.
@transaction.atomic(savepoint=False)
def notification_deliver(
    *, notification_id: int, attempt: int, send: Callable[[Notification], Sent | Skipped]
) -> Notification | None:
    """Send a notification not sent yet and record the outcome; a sent or skipped one is left
    as it is (a redelivered command sends nothing twice). A failed one is tried again: its
    dead-lettered command was replayed (the provider is back). The row stays locked while it is
    sent, so a second copy of the notifier waits and then finds it sent.

    ``send`` raising leaves the row as it was for the next attempt (the caller retries)."""
    notification = one_or_none(Notification.objects.select_for_update().filter(pk=notification_id))
    if notification is None or notification.status not in (Status.PENDING, Status.FAILED):
        return notification
    outcome = send(notification)
    notification.attempts = attempt
    if isinstance(outcome, Skipped):
        notification.status, notification.reason = Status.SKIPPED, outcome.reason
    else:
        notification.status, notification.reason = Status.SENT, ""
        notification.provider_id = outcome.provider_id[:200]
        notification.sent_at = timezone.now()
    notification.save(update_fields=["status", "reason", "attempts", "provider_id", "sent_at"])
    logger.info(
        "notification %s",
        notification.status,
        extra={
            "notification_id": notification.pk,
            "key": notification.key,
            "channel": notification.channel,
            "attempt": attempt,
            "provider_id": notification.provider_id,
        },
    )
    return notification


def notification_failed(*, notification_id: int, attempt: int, reason: str, final: bool) -> None:
    """Record a failed attempt; ``final``: it was the last, and the command is dead-lettered."""
    updated = Notification.objects.filter(pk=notification_id, status__in=[Status.PENDING, Status.FAILED]).update(
        attempts=attempt, reason=reason[:500], status=Status.FAILED if final else Status.PENDING
    )
    if updated:
        (logger.error if final else logger.warning)(
            "notification failed%s",
            " for good" if final else ", to be retried",
            extra={"notification_id": notification_id, "attempt": attempt, "reason": reason[:500]},
        )


@transaction.atomic
def notification_resend(*, notification_id: int) -> Notification:
    """Send a notification again, as it was written, to the customer's address as it is now:
    a new row of the log (the operator asked, so neither preferences nor watching apply)."""
    original = Notification.objects.select_for_update().select_related("customer").get(pk=notification_id)
    profile = one_or_none(CustomerProfile.objects.filter(user=original.customer))
    recipient = {
        Channel.EMAIL: original.customer.email,
        Channel.SMS: profile.phone if profile else "",
        Channel.PUSH: "",
    }[Channel(original.channel)]
    count = original.resends.count()
    notification = Notification.objects.create(
        key=f"resend:{original.pk}:{count + 1}",
        customer=original.customer,
        order=original.order,
        message=original.message,
        channel=original.channel,
        recipient=recipient or original.recipient,
        subject=original.subject,
        body=original.body,
        link=original.link,
        resend_of=original,
        correlation_id=get_correlation_id() or "",
    )
    _enqueue(notification)
    logger.info("notification resent", extra={"notification_id": notification.pk, "resend_of": original.pk})
    return notification
