"""Toasts: a notification on the customer's open pages, sent by the planner itself.

A toast is worth sending only while a page of the site is open, and then within a second. So
the planner sends it straight to the customer's group once its plan commits, with no delivery
command: no outbox row, relay publish, audit row or handling by the push worker per toast.

Its row is written as sent with the plan. After the commit:

* the group has a member: the toast goes out, and the row is right;
* nobody is there any longer (the page closed since the plan looked): the row is set to not
  sent, with the reason, as the push worker would have recorded it;
* the send fails (Redis away): the rows go back to pending and a delivery command each takes
  the old road through the outbox, so the push worker tries again and retries after that.

A crash between the plan's commit and the send loses those toasts, though their rows say sent;
the order's own status update reaches the tracking page all the same. That is the price of not
paying a message and four handlings for every toast (docs/performance.md).

How a toast reaches the pages is the live layer's business (above this package): the notifier
hands the planner a :class:`Toasts` (consumers/notifier.py ``LiveToasts``). A plan made
without one sends its toasts through the push worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from bus.correlation import Trace, traced
from notifications import metrics as notification_metrics
from notifications.models import Notification

logger = logging.getLogger(__name__)

Status = Notification.Status


class Toasts(Protocol):
    """Where a customer's toasts go, and how they get there."""

    def address(self, customer_id: int) -> str:
        """What a sent toast's row records as its provider id (the customer's pages)."""

    def send(self, toasts: list[Notification]) -> set[int]:
        """Send these toasts to the pages open now; the customers who had one. Raises when
        they could not be sent."""


NO_PAGE_OPEN = "no page of the site open"


def toast_frame(notification: Notification) -> dict[str, Any]:
    """The channel-layer message a customer's sockets turn into a ``notification`` frame."""
    return {
        "type": "customer.notification",
        "id": notification.pk,
        "key": notification.key,
        "message": notification.message,
        "title": notification.subject,
        "body": notification.body,
        "link": notification.link,
        "order_id": notification.order_id,
    }


def mark_sent(toasts: list[Notification], via: Toasts) -> None:
    """Write these toasts as sent (before their rows are inserted: they go out on commit)."""
    now = timezone.now()
    for notification in toasts:
        notification.status, notification.reason = Status.SENT, ""
        notification.provider_id = via.address(notification.customer_id)
        notification.sent_at = now


def send_on_commit(
    toasts: list[tuple[Notification, Trace | None]], via: Toasts, requeue: Callable[[list[Notification]], None]
) -> None:
    """Send these toasts once the transaction in hand commits (nothing if it rolls back).
    ``requeue`` puts back on the push worker's road those the send could not deliver."""
    if toasts:
        transaction.on_commit(lambda: send_now(toasts, via, requeue))


def send_now(
    toasts: list[tuple[Notification, Trace | None]], via: Toasts, requeue: Callable[[list[Notification]], None]
) -> None:
    try:
        reached = via.send([notification for notification, _ in toasts])
    except Exception as error:  # noqa: BLE001 - the push worker's road retries them
        logger.warning("toasts not sent, handed to the push worker: %r", error, extra={"count": len(toasts)})
        try:
            requeue([notification for notification, _ in toasts])
        except Exception:  # the database is away too: those toasts are lost, their rows say sent
            logger.exception("toasts could not be handed to the push worker")
        return
    missed = [notification for notification, _ in toasts if notification.customer_id not in reached]
    if missed:
        Notification.objects.filter(pk__in=[n.pk for n in missed], status=Status.SENT).update(
            status=Status.SKIPPED, reason=NO_PAGE_OPEN, provider_id="", sent_at=None
        )
    missed_ids = {notification.pk for notification in missed}
    for notification, trace in toasts:
        sent = notification.pk not in missed_ids
        notification_metrics.count(notification.channel, "sent" if sent else "suppressed", "" if sent else NO_PAGE_OPEN)
        with traced(trace):
            logger.info(
                "notification %s",
                "sent" if sent else "skipped",
                extra={"notification_id": notification.pk, "key": notification.key, "channel": notification.channel},
            )
