"""The notifier's writes: plan what to tell a customer and by which channels, deliver one
planned notification, record a failure, resend from the admin, send a verification link or code.

Planning and delivery are two steps with a message between them (``customer.notify.<channel>``,
written to the outbox with the plan): the plan commits once per customer, step and channel
(the unique ``key``), and each channel's deliveries retry on their own queue.

What keeps the notifier from being used to pump messages (docs/security.md, Notifications):

* Emails and texts go only to a verified address (notifications/addresses.py), checked when a
  notification is planned and again when it is delivered; the only messages an address gets
  before it is verified are the ones that verify it (the welcome email's link, a link or a code
  asked for on the account page), and those are capped per customer and per address.
* Every email and text is counted against hourly caps per customer and for the whole site
  (notifications/limits.py, in Redis: every notifier process shares them) when it is delivered;
  over a cap it is not sent, and the log says why.
* A failed payment is told once, by the customer's preferred channel (:data:`PREFERENCE`).
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.template import Context, Template
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from bus.correlation import Trace, current_trace, get_correlation_id, traced
from bus.outbox import Pending, outbox_write_many
from notifications import limits
from notifications import metrics as notification_metrics
from notifications import toasts as toast_road
from notifications.addresses import (
    VerificationFailed,
    current_addresses,
    email_link,
    is_verified,
    normalize,
    phone_code_mint,
    verified_addresses,
)
from notifications.delivery import PermanentFailure, Sent, Skipped
from notifications.events import CUSTOMER_NOTIFY
from notifications.limits import Cap
from notifications.models import Notification
from notifications.toasts import NO_PAGE_OPEN, Toasts
from ordering.models import CustomerProfile, Order
from passline.db import insert_rows, mark_saved, one_or_none

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
ORDER_MESSAGES = frozenset([*STEP_MESSAGES.values(), REFUNDED])
WELCOME = "welcome"
VERIFY_EMAIL = "verify_email"
VERIFY_PHONE = "verify_phone"
# The channels each message has a template for (templates/notifications/<message>.<channel>.txt).
CHANNELS: dict[str, tuple[Channel, ...]] = {
    **dict.fromkeys([*STEP_MESSAGES.values(), REFUNDED], (Channel.EMAIL, Channel.SMS, Channel.PUSH)),
    WELCOME: (Channel.EMAIL, Channel.SMS),
    VERIFY_EMAIL: (Channel.EMAIL,),
    VERIFY_PHONE: (Channel.SMS,),
}
# The messages an address may get before it is verified, by the channel they verify: the link or
# code that verifies it (the welcome email carries the link). Their secret is put in when they are
# sent, never stored: the log keeps WITHHELD in its place.
VERIFYING: dict[str, Channel] = {WELCOME: Channel.EMAIL, VERIFY_EMAIL: Channel.EMAIL, VERIFY_PHONE: Channel.SMS}
WITHHELD = "[withheld from the log]"
NOT_VERIFIED = {Channel.EMAIL: "email address not verified", Channel.SMS: "phone number not verified"}
NO_ADDRESS = {Channel.EMAIL: "no email address", Channel.SMS: "no phone number"}
# Steps told once, by one channel: the first of the customer's chosen channels, in this order,
# that can reach them now (a page of the site is open; a verified address). Told by every channel,
# a failed payment (which a customer can cause at will) is a message pump.
ONCE_STEPS = frozenset({"payment_failed"})
PREFERENCE = (Channel.PUSH, Channel.EMAIL, Channel.SMS)


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
    # What the templates read that came with the event, not from the order (a refund's amount,
    # the reason given): kept on a row not written now, to write it from if it is resent.
    event_values: dict[str, str] = field(default_factory=dict)
    order: Order | None = None
    link: str = ""
    skip_email_sms: str = ""  # a reason not to email or text this step
    skip_push: str = ""  # a reason not to show it in the browser
    # The customer's verified addresses, asked for only when an email or text could go out.
    verified: Callable[[], dict[str, str]] | None = None  # (read for this customer if None)
    once: bool = False  # by one channel only (ONCE_STEPS)


class _VerifiedAddresses:
    """Customers' verified addresses, read for all of them in one query the first time one is
    needed: a batch of steps whose emails and texts are all skipped (the customers watch their
    orders live) reads none."""

    def __init__(self, user_ids: set[int]) -> None:
        self._user_ids = user_ids
        self._read: dict[int, dict[str, str]] | None = None

    def of(self, user_id: int) -> Callable[[], dict[str, str]]:
        return lambda: self._all().get(user_id, {})

    def _all(self) -> dict[int, dict[str, str]]:
        if self._read is None:
            self._read = verified_addresses(self._user_ids)
        return self._read


@dataclass(frozen=True)
class Step:
    """An order step to tell its customer about (see :func:`notifications_plan_order_steps`)."""

    order_id: int
    step: str
    watching: bool
    online: bool = True
    amount: Decimal | None = None
    reason: str = ""
    # The request and message that took the order to this step (a batch plans many at once):
    # the work in hand's where the step is made.
    trace: Trace | None = field(default_factory=current_trace)


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


def notifications_plan_order_steps(steps: list[Step], *, toasts: Toasts | None = None) -> list[Notification]:
    """:func:`notifications_plan_order_step` for many steps at once: their orders (with the
    customers and profiles) read in one query, their rows written in one. With ``toasts``,
    the toasts are sent that way once the plan commits, without a delivery command
    (notifications/toasts.py)."""
    steps = [step for step in steps if _step_message(step.step) is not None]
    if not steps:
        return []
    # The dishes stay a lazy query per order: only the paid email's template reads them, and
    # prefetching them for every step (accepted, ready, …) would be a query nobody reads.
    orders = Order.objects.select_related("restaurant", "customer", "customer__profile").in_bulk(
        {step.order_id for step in steps}
    )
    verified = _VerifiedAddresses({order.customer_id for order in orders.values()})
    orders_link, wallet_link = _absolute(reverse("order_history")), _absolute(reverse("wallet"))
    candidates: list[Notification] = []
    traces: dict[int, Trace | None] = {}
    for step in steps:
        with traced(step.trace):
            planned = _plan_step(step, orders.get(step.order_id), verified, orders_link, wallet_link)
        traces.update((id(notification), step.trace) for notification in planned)
        candidates += planned
    return _create(candidates, traces, toasts=toasts)


def _plan_step(
    step: Step, order: Order | None, verified: _VerifiedAddresses, orders_link: str, wallet_link: str
) -> list[Notification]:
    """The candidate notifications of one step."""
    if order is None:
        logger.warning("no such order to notify about", extra={"order_id": step.order_id, "step": step.step})
        return []
    path = reverse("order_detail", args=[order.pk])
    plan = _Plan(
        customer=order.customer,
        message=_step_message(step.step) or "",
        key=f"order:{order.pk}:{step.step}",
        order=order,
        link=path,
        verified=verified.of(order.customer_id),
        once=step.step in ONCE_STEPS,
        context=_order_context(
            order,
            amount=step.amount,
            reason=step.reason,
            link=_absolute(path),
            orders_link=orders_link,
            wallet_link=wallet_link,
        ),
        event_values={
            **({"amount": str(step.amount)} if step.amount is not None else {}),
            **({"reason": step.reason} if step.reason else {}),
        },
    )
    if step.watching:
        plan.skip_email_sms = "watching the order live"
    if not step.online:
        plan.skip_push = NO_PAGE_OPEN
    return _candidates(plan)


def _order_context(
    order: Order, *, amount: Decimal | None, reason: str, link: str, orders_link: str, wallet_link: str
) -> dict[str, Any]:
    """What an order step's templates read: the order, its lines, the amount (a refund's, else
    the order's total), the reason given and the links."""
    return {
        "order": order,
        "lines": order.lines.all(),  # (a lazy query: read only by a template that shows them)
        "amount": amount if amount is not None else order.total,
        "reason": reason,
        "link": link,
        "orders_link": orders_link,
        "wallet_link": wallet_link,
    }


def notifications_plan_welcome(*, customer_id: int) -> list[Notification]:
    """Welcome a new customer by the channels their profile chose (email, by default)."""
    customer = one_or_none(User.objects.select_related("profile").filter(pk=customer_id))
    if customer is None:
        return []
    verified = verified_addresses([customer.pk]).get(customer.pk, {})
    candidates = _candidates(
        _Plan(
            customer=customer,
            message=WELCOME,
            key=f"welcome:{customer.pk}",
            context={},
            link=reverse("restaurant_list"),
            verified=lambda: verified,
        )
    )
    for notification in candidates:
        if notification.status == Status.PENDING and notification.channel in VERIFYING.values():
            # An email to an address not verified yet carries its verification link: counted
            # against the verification caps (by its key, so a replayed event counts once).
            if not is_verified(verified=verified, channel=notification.channel, address=notification.recipient):
                full = limits.reserve(
                    verification_caps(notification.channel, customer.pk, notification.recipient), notification.key
                )
                if full is not None:
                    notification.status, notification.reason = Status.SKIPPED, full.reason
    return _create(candidates)


def _welcome_context(customer: Any) -> dict[str, Any]:
    return {
        "link": _absolute(reverse("restaurant_list")),
        "profile_link": _absolute(reverse("profile")),
        "hours": settings.VERIFY_EMAIL_LINK_SECONDS // 3600,
    }


def _candidates(plan: _Plan) -> list[Notification]:
    """A row per channel the customer chose, to be sent or not (and why). Only those to be sent
    are written (their subject and body rendered) now: a row not sent keeps them blank, with
    what it takes to write it later (:func:`notification_resend`)."""
    try:
        profile = plan.customer.profile  # read with the customer
    except CustomerProfile.DoesNotExist:
        profile = CustomerProfile(user=plan.customer)
    chosen = {Channel.EMAIL: profile.notify_email, Channel.SMS: profile.notify_sms, Channel.PUSH: profile.notify_push}
    addresses = {**current_addresses(plan.customer, profile), Channel.PUSH: ""}
    customer_id = plan.customer.pk
    verified = plan.verified or (lambda: verified_addresses([customer_id]).get(customer_id, {}))
    context = {"customer": plan.customer, **_message_context(plan.message, plan.customer), **plan.context}
    candidates: list[Notification] = []
    for channel in CHANNELS[plan.message]:
        if not chosen[channel]:
            continue  # never by a channel the customer did not choose
        skip = plan.skip_push if channel == Channel.PUSH else ""
        if channel != Channel.PUSH:
            if not addresses[channel]:
                skip = NO_ADDRESS[channel]
            elif plan.skip_email_sms and not profile.notify_while_watching:
                skip = plan.skip_email_sms
            elif (
                not _address_verified(channel, addresses[channel], verified) and VERIFYING.get(plan.message) != channel
            ):
                skip = NOT_VERIFIED[channel]
        candidates.append(
            Notification(
                key=f"{plan.key}:{channel}",
                customer=plan.customer,
                order=plan.order,
                message=plan.message,
                channel=channel,
                recipient=addresses[channel],
                link=plan.link,
                status=Status.SKIPPED if skip else Status.PENDING,
                reason=skip,
                correlation_id=get_correlation_id() or "",
            )
        )
    if plan.once and candidates:
        candidates = [_preferred(plan.key, candidates)]
    for notification in candidates:
        if notification.status == Status.PENDING:
            _write(notification, context, verified)
        else:
            # Not rendered: most rows not sent are never read again (the paid email, with its
            # lines and VAT table, is the planner's costliest render).
            notification.event_values = plan.event_values
    return candidates


def _address_verified(channel: str, address: str, verified: Callable[[], dict[str, str]]) -> bool:
    """Whether ``address`` is the one verified on ``channel`` (no address: no, and nothing read)."""
    return bool(normalize(channel, address)) and is_verified(verified=verified(), channel=channel, address=address)


def _write(notification: Notification, context: dict[str, Any], verified: Callable[[], dict[str, str]]) -> None:
    """Render the notification's subject and body into it."""
    address_verified = _address_verified(notification.channel, notification.recipient, verified)
    rendered = render(
        notification.message, notification.channel, {**context, "verify_link": "" if address_verified else WITHHELD}
    )
    notification.subject, notification.body = rendered.subject, rendered.body


def _preferred(key: str, candidates: list[Notification]) -> Notification:
    """The one notification of a step told once: the first in PREFERENCE that is to be sent,
    or, if none can be, the first (kept as not sent, with its reason). Its key names no channel,
    so a replay of the step (when another channel might be the one that can reach the customer)
    finds it planned."""
    ordered = sorted(candidates, key=lambda n: PREFERENCE.index(Channel(n.channel)))
    chosen = next((n for n in ordered if n.status == Status.PENDING), ordered[0])
    chosen.key = key
    return chosen


class NotificationUnwritable(Exception):
    """A notification not written when it was planned can no longer be: its order is gone."""


def _write_later(notification: Notification, *, customer: Any, event_values: dict[str, str]) -> None:
    """Write a notification that was not written when it was planned, as it would have been
    then: from its order as it is now (its lines and total do not change once it is paid) and
    the values the event gave (:attr:`Notification.event_values`)."""
    context: dict[str, Any] = {"customer": customer, **_message_context(notification.message, customer)}
    if notification.message in ORDER_MESSAGES:
        order = notification.order
        if order is None:
            raise NotificationUnwritable(f"Notification {notification.key}: its order is gone.")
        context |= _order_context(
            order,
            amount=Decimal(event_values["amount"]) if "amount" in event_values else None,
            reason=event_values.get("reason", ""),
            link=_absolute(notification.link),
            orders_link=_absolute(reverse("order_history")),
            wallet_link=_absolute(reverse("wallet")),
        )
    _write(notification, context, lambda: verified_addresses([customer.pk]).get(customer.pk, {}))


def _message_context(message: str, customer: Any) -> dict[str, Any]:
    """What a message's template reads besides the plan's own context."""
    if message == WELCOME:
        return _welcome_context(customer)
    if message in (VERIFY_EMAIL, VERIFY_PHONE):
        return {
            "code": WITHHELD,
            "hours": settings.VERIFY_EMAIL_LINK_SECONDS // 3600,
            "minutes": settings.VERIFY_PHONE_CODE_SECONDS // 60,
        }
    return {}


def _create(
    candidates: list[Notification], traces: dict[int, Trace | None] | None = None, *, toasts: Toasts | None = None
) -> list[Notification]:
    """The rows not planned before (by this event delivered twice, or by a second copy of the
    notifier), written in one statement, and a delivery command for each pending one.

    ``traces``: by ``id()`` of a candidate, the trace of the step it was planned for (a batch's
    steps); its command and its log line name that step's request and message.
    ``toasts``: the toasts are written as sent and sent that way once the plan commits,
    without a delivery command (notifications/toasts.py)."""
    traces = traces or {}
    if not candidates:
        return []
    # Written without first reading which keys exist: a step planned before is rare (a replayed
    # event, a second notifier racing), and the keys' unique index leaves it out.
    new = list(candidates)
    direct: set[int] = set()  # id() of the toasts sent by ``toasts`` once the plan commits
    if toasts is not None:
        pushes = [n for n in new if n.channel == Channel.PUSH and n.status == Status.PENDING]
        toast_road.mark_sent(pushes, toasts)
        direct = {id(notification) for notification in pushes}
    new = _insert_new(new)
    commands = []
    for notification in new:
        if notification.status == Status.PENDING:
            with traced(traces.get(id(notification))):
                commands.append(_command(notification))
    outbox_write_many(commands)
    if toasts is not None:
        sent_later = [(n, traces.get(id(n))) for n in new if id(n) in direct]  # (those written)
        toast_road.send_on_commit(sent_later, toasts, _requeue_toasts)
    for notification in new:
        if id(notification) in direct:
            continue  # counted and logged when sent (notifications/toasts.py)
        if notification.status == Status.SKIPPED:
            notification_metrics.count(notification.channel, "suppressed", notification.reason)
        with traced(traces.get(id(notification))):
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


class NotificationsNotWritten(DatabaseError):
    """The insert of planned notifications was refused for another reason than a key planned
    before (which MariaDB's ``INSERT IGNORE`` would otherwise only warn of)."""


def _insert_new(notifications: list[Notification]) -> list[Notification]:
    """Insert the notifications whose key is not planned yet, in one statement, and return
    them (their ids set); the others are left out.

    ``INSERT IGNORE … RETURNING`` returns only the rows it wrote: no savepoint to recover from
    a duplicate key (two statements more a plan). IGNORE also turns any other refusal (a missing
    customer, a value too long) into a warning: there must be one warning per row left out, and
    each row left out must be planned already (read only then), or the insert raises and the
    plan's transaction rolls back.
    """
    written = {key: row_id for row_id, key in insert_rows(notifications, returning=["key"], ignore=True)}
    warnings = connection.connection.warning_count()
    new: list[Notification] = []
    for notification in notifications:
        # A key twice in the batch (the same step announced twice) is written by its first row.
        if (row_id := written.pop(notification.key, None)) is not None:
            mark_saved(notification, row_id)
            new.append(notification)
    left_out = {n.key for n in notifications} - {n.key for n in new}
    if warnings != len(notifications) - len(new):
        raise NotificationsNotWritten(f"notifications not written: {_warnings()}")
    if left_out:
        planned = set(Notification.objects.filter(key__in=left_out).values_list("key", flat=True))
        if refused := sorted(left_out - planned):
            # Left out with a warning, yet not planned before: refused (a foreign key, …).
            raise NotificationsNotWritten(f"notifications not written: {refused}")
    return new


def _warnings() -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW WARNINGS")
        return list(cursor.fetchall())


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


def _requeue_toasts(notifications: list[Notification]) -> None:
    """Toasts the planner could not send: back to pending, with a delivery command each for
    the push worker (which retries them)."""
    with transaction.atomic():
        Notification.objects.filter(pk__in=[n.pk for n in notifications], status=Status.SENT).update(
            status=Status.PENDING, provider_id="", sent_at=None
        )
        outbox_write_many([_command(notification) for notification in notifications])


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

    An email or text goes out only to the customer's current address, verified (or being
    verified by this very message), and only if the hourly caps have room: else it is recorded
    as not sent, with the reason, and never tried again. A :class:`PermanentFailure` of the
    provider is recorded as failed at once. ``send`` raising anything else leaves the row as it
    was for the next attempt (the caller retries)."""
    notification = one_or_none(Notification.objects.select_for_update().filter(pk=notification_id))
    if notification is None or notification.status not in (Status.PENDING, Status.FAILED):
        return notification
    caps: list[Cap] = []
    member = f"notification:{notification.pk}"
    outgoing = notification
    if notification.channel in (Channel.EMAIL, Channel.SMS):
        customer = User.objects.get(pk=notification.customer_id)
        refusal = _refusal(notification, customer)
        if not refusal:
            caps = delivery_caps(notification.channel, notification.customer_id)
            full = limits.reserve(caps, member)  # (Redis away: raised, and retried)
            if full is not None:
                refusal, caps = full.reason, []
        if refusal:
            return _record(notification, attempt, Skipped(refusal))
        outgoing = _with_secret(notification, customer)
    try:
        outcome = send(outgoing)
    except PermanentFailure as error:
        limits.release(caps, member)
        return _record(notification, attempt, error)
    except Exception:
        limits.release(caps, member)
        raise
    if isinstance(outcome, Skipped):
        limits.release(caps, member)
    return _record(notification, attempt, outcome)


def _record(notification: Notification, attempt: int, outcome: Sent | Skipped | PermanentFailure) -> Notification:
    notification.attempts = attempt
    if isinstance(outcome, Skipped):
        notification.status, notification.reason = Status.SKIPPED, outcome.reason[:500]
    elif isinstance(outcome, PermanentFailure):
        notification.status, notification.reason = Status.FAILED, f"permanent: {outcome}"[:500]
    else:
        notification.status, notification.reason = Status.SENT, ""
        notification.provider_id = outcome.provider_id[:200]
        notification.sent_at = timezone.now()
    notification.save(update_fields=["status", "reason", "attempts", "provider_id", "sent_at"])
    notification_metrics.count(
        notification.channel,
        {Status.SKIPPED: "suppressed", Status.FAILED: "failed"}.get(Status(notification.status), "sent"),
        "permanent" if notification.status == Status.FAILED else notification.reason,
    )
    (logger.warning if notification.status == Status.FAILED else logger.info)(
        "notification %s",
        notification.status,
        extra={
            "notification_id": notification.pk,
            "key": notification.key,
            "channel": notification.channel,
            "attempt": attempt,
            "provider_id": notification.provider_id,
            "reason": notification.reason,
        },
    )
    return notification


def _refusal(notification: Notification, customer: Any) -> str:
    """Why an email or text may not go to its recipient now ("" if it may): the address must be
    the account's current one, and verified unless this message is what verifies it."""
    channel = Channel(notification.channel)
    address = current_addresses(customer)[channel]
    if not address:
        return NO_ADDRESS[channel]
    if normalize(channel, notification.recipient) != normalize(channel, address):
        return "no longer the customer's address"
    verified = is_verified(
        verified=verified_addresses([customer.pk]).get(customer.pk, {}), channel=channel, address=address
    )
    if notification.message in (VERIFY_EMAIL, VERIFY_PHONE):
        return "verified already" if verified else ""
    if not verified and VERIFYING.get(notification.message) != channel:
        return NOT_VERIFIED[channel]
    return ""


def _with_secret(notification: Notification, customer: Any) -> Notification:
    """The notification as it is sent: a verifying message with its link or code put in (a fresh
    one at every attempt: a code's digest is stored with the send, in its transaction)."""
    if notification.message not in VERIFYING:
        return notification
    context: dict[str, Any] = {"customer": customer, **_message_context(notification.message, customer)}
    if notification.message == VERIFY_PHONE:
        context["code"] = phone_code_mint(user=customer, phone=notification.recipient)
    elif not is_verified(
        verified=verified_addresses([customer.pk]).get(customer.pk, {}),
        channel=Channel.EMAIL,
        address=notification.recipient,
    ):
        context["verify_link"] = email_link(user=customer, email=notification.recipient)
    rendered = render(notification.message, notification.channel, {"verify_link": "", **context})
    outgoing = copy.copy(notification)
    outgoing.subject, outgoing.body = rendered.subject, rendered.body
    return outgoing


def delivery_caps(channel: str, customer_id: int) -> list[Cap]:
    """The hourly caps every email or text counts against: its customer's and the site's."""
    what = "emails" if channel == Channel.EMAIL else "texts"
    per_customer, site = (
        (settings.NOTIFY_EMAILS_PER_CUSTOMER, settings.NOTIFY_EMAILS_PER_SITE)
        if channel == Channel.EMAIL
        else (settings.NOTIFY_TEXTS_PER_CUSTOMER, settings.NOTIFY_TEXTS_PER_SITE)
    )
    return [
        Cap(f"{channel}:customer:{customer_id}", per_customer, f"{what} to this customer"),
        Cap(f"{channel}:site", site, f"{what} from the site"),
    ]


def verification_caps(channel: str, user_id: int, address: str) -> list[Cap]:
    """The hourly caps on verification links or codes: per customer, and per address (however
    many accounts name it)."""
    what = "verification emails" if channel == Channel.EMAIL else "verification codes"
    return [
        Cap(f"verify:{channel}:customer:{user_id}", settings.VERIFY_SENDS_PER_CUSTOMER, f"{what} to this customer"),
        Cap(
            f"verify:{channel}:to:{limits.address_digest(normalize(channel, address))}",
            settings.VERIFY_SENDS_PER_ADDRESS,
            f"{what} to this address",
        ),
    ]


class VerificationLimited(VerificationFailed):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def verification_request(*, user: Any, channel: str) -> Notification:
    """Send the customer a link (email) or a code (SMS) to verify their current address: a
    notification like any other (delivered by the notifier, logged, capped), its secret put in
    only when it is sent. Raises :class:`VerificationFailed` (no address, already verified)
    or :class:`VerificationLimited` (too many asked for this hour)."""
    channel = Channel(channel)
    if channel not in VERIFYING.values():
        raise VerificationFailed("That cannot be verified.")
    address = current_addresses(user)[channel]
    if not address:
        raise VerificationFailed(
            "Add an email address first." if channel == Channel.EMAIL else "Add a phone number first."
        )
    if is_verified(verified=verified_addresses([user.pk]).get(user.pk, {}), channel=channel, address=address):
        raise VerificationFailed("That address is verified already.")
    member = uuid.uuid4().hex
    try:
        full = limits.reserve(verification_caps(channel, user.pk, address), member)
    except redis.RedisError:
        logger.exception("verification caps unavailable")
        raise VerificationLimited("We cannot send that right now. Try again in a minute.", 60) from None
    if full is not None:
        minutes = -(-full.retry_after // 60)
        raise VerificationLimited(
            f"We have sent enough of those this hour. Try again in {minutes} minute{'s' * (minutes != 1)}.",
            full.retry_after,
        )
    message = VERIFY_EMAIL if channel == Channel.EMAIL else VERIFY_PHONE
    rendered = render(message, channel, {"customer": user, **_message_context(message, user), "verify_link": WITHHELD})
    notification = Notification(
        key=f"verify:{channel}:{user.pk}:{member}",
        customer=user,
        message=message,
        channel=channel,
        recipient=address,
        subject=rendered.subject,
        body=rendered.body,
        link=reverse("verify_addresses"),
        correlation_id=get_correlation_id() or "",
    )
    with transaction.atomic():
        (created,) = _create([notification])
    return created


def notification_failed(*, notification_id: int, attempt: int, reason: str, final: bool) -> None:
    """Record a failed attempt; ``final``: it was the last, and the command is dead-lettered."""
    updated = Notification.objects.filter(pk=notification_id, status__in=[Status.PENDING, Status.FAILED]).update(
        attempts=attempt, reason=reason[:500], status=Status.FAILED if final else Status.PENDING
    )
    if updated and final:
        for channel in Notification.objects.filter(pk=notification_id).values_list("channel", flat=True):
            notification_metrics.count(channel, "failed", "exhausted")
    if updated:
        (logger.error if final else logger.warning)(
            "notification failed%s",
            " for good" if final else ", to be retried",
            extra={"notification_id": notification_id, "attempt": attempt, "reason": reason[:500]},
        )


@transaction.atomic
def notification_resend(*, notification_id: int) -> Notification:
    """Send a notification again, as it was written, to the customer's address as it is now:
    a new row of the log (the operator asked, so neither preferences nor watching apply). One
    not written when it was planned (it was not to be sent) is written now, from its order and
    the event's values; :class:`NotificationUnwritable` if its order is gone."""
    original = Notification.objects.select_for_update().select_related("customer").get(pk=notification_id)
    profile = one_or_none(CustomerProfile.objects.filter(user=original.customer))
    recipient = {
        Channel.EMAIL: original.customer.email,
        Channel.SMS: profile.phone if profile else "",
        Channel.PUSH: "",
    }[Channel(original.channel)]
    count = original.resends.count()
    notification = Notification(
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
    if not original.body:
        _write_later(notification, customer=original.customer, event_values=original.event_values)
    notification.save(force_insert=True)
    _enqueue(notification)
    logger.info("notification resent", extra={"notification_id": notification.pk, "resend_of": original.pk})
    return notification
