"""What a kitchen does to its tickets besides moving them on: cross dishes off, flag a ticket
to go first, and recall a move made by mistake.

Every change locks the order row (the same lock as a status change, so the ticket's revision
rises one change at a time), writes nothing when there is nothing to change, and announces
itself through the outbox in the same transaction.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from bus.outbox import outbox_write
from ordering.events import KITCHEN_TICKET_CHANGED
from ordering.exceptions import InvalidTransition, NotFound, PermissionDenied
from ordering.models import Order, OrderEvent, OrderLine, StaffMembership
from ordering.services.orders import order_move
from ordering.status import BUMPABLE, KITCHEN_OPEN, Actor, OrderStatus, recall_target
from passline.db import one_or_none

logger = logging.getLogger(__name__)


def _staff_order(*, order_id: int, user: User) -> Order:
    """The order, locked, if ``user`` works at its restaurant (call inside a transaction)."""
    order = one_or_none(Order.objects.select_for_update().filter(pk=order_id))
    if order is None:
        raise NotFound("There is no such order.")
    if not StaffMembership.objects.filter(user=user, restaurant_id=order.restaurant_id).exists():
        raise PermissionDenied("Only staff of this order's restaurant can change it.")
    return order


def _announce(order: Order, change: str, menu_item_id: int | None = None, fields: tuple[str, ...] = ()) -> None:
    """Save the ticket's next revision (with ``fields``) and tell every kitchen screen."""
    order.ticket_revision += 1
    order.save(update_fields=["ticket_revision", "updated_at", *fields])
    outbox_write(
        event=KITCHEN_TICKET_CHANGED,
        aggregate=f"order:{order.pk}",
        payload={
            "order_id": order.pk,
            "restaurant_id": order.restaurant_id,
            "revision": order.ticket_revision,
            "change": change,
            "menu_item_id": menu_item_id,
        },
    )


@transaction.atomic
def order_item_mark_done(
    *, order_id: int, user: User, done: bool = True, menu_item_id: int | None = None, line_id: int | None = None
) -> Order:
    """Cross a dish of a ticket off (or put it back) while the kitchen is making the order: one
    line (``line_id``), or every line of a dish (``menu_item_id``: a dish ordered with different
    options or notes is several lines)."""
    order = _staff_order(order_id=order_id, user=user)
    found = OrderLine.objects.filter(order=order)
    if line_id is not None:
        found = found.filter(pk=line_id)
    if menu_item_id is not None:
        found = found.filter(menu_item_id=menu_item_id)
    lines = list(found) if line_id is not None or menu_item_id is not None else []
    if not lines:
        raise NotFound("This order has no such dish.")
    menu_item_id = lines[0].menu_item_id
    if OrderStatus(order.status) not in BUMPABLE:
        raise InvalidTransition(
            "Dishes can be crossed off only while the order is accepted or being prepared.",
            current=order.status,
            to=order.status,
        )
    if all((line.done_at is not None) == done for line in lines):
        return order  # already so: a repeated tap changes nothing
    OrderLine.objects.filter(pk__in=[line.pk for line in lines]).update(done_at=timezone.now() if done else None)
    _announce(order, "item_done" if done else "item_undone", menu_item_id)
    logger.info("ticket item marked", extra={"order_id": order.pk, "menu_item_id": menu_item_id, "done": done})
    return order


@transaction.atomic
def order_set_priority(*, order_id: int, user: User, priority: bool) -> Order:
    """Flag an open ticket to go first, or take the flag off."""
    order = _staff_order(order_id=order_id, user=user)
    if OrderStatus(order.status) not in KITCHEN_OPEN:
        raise InvalidTransition("Only an open ticket can be flagged.", current=order.status, to=order.status)
    if order.priority == priority:
        return order
    order.priority = priority
    _announce(order, "priority", fields=("priority",))
    logger.info("ticket priority set", extra={"order_id": order.pk, "priority": priority})
    return order


def recall_window() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.KITCHEN_RECALL_SECONDS)


def recall_of(last: OrderEvent | None, *, now: datetime.datetime | None = None) -> OrderStatus | None:
    """Where the order's last step can be recalled to, or None (not a kitchen move, too old)."""
    if last is None or not last.from_status:
        return None
    if (now or timezone.now()) - last.at > recall_window():
        return None
    return recall_target(status=last.status, from_status=last.from_status, actor=last.actor_kind)


@transaction.atomic
def order_recall(*, order_id: int, user: User) -> Order:
    """Undo the kitchen's last move of an order (a tap by mistake): the order goes back to the
    status it came from, as a new version, so every screen and the customer's page follow."""
    order = _staff_order(order_id=order_id, user=user)
    last = OrderEvent.objects.filter(order=order).order_by("-version").first()
    target = recall_of(last)
    if target is None or last is None or last.status != order.status:
        raise InvalidTransition(
            f"There is nothing to recall: only the kitchen's last move, within "
            f"{settings.KITCHEN_RECALL_SECONDS // 60} minutes, can be undone.",
            current=order.status,
            to=order.status,
        )
    return order_move(
        order=order,
        to=target,
        actor_kind=Actor.STAFF,
        actor=user,
        reason=f"Recalled by the kitchen (was {OrderStatus(last.status).label.lower()})",
    )
