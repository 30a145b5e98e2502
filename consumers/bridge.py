"""The bridge: forwards the notification exchange into Channels groups through
channels-redis — order status changes to the order's page, the customer and the restaurant's
kitchen; ticket changes (a dish crossed off, the priority flag) to the kitchen; stock changes
and the staff's edits of dishes and of the restaurant's state to the restaurant's open menu pages.

It works a batch at a time (the runner hands over whatever is waiting): the kitchen tickets of
the whole batch are read in one query set, and all its group messages go out together through
one long-lived event loop (``live.layer.GroupSender``), each group's in order. The kitchen
group gets the whole ticket as the database has it now, read here once rather than by every
open screen, and JSON-encoded once; its revision tells screens whether it is newer than what
they show.

Group messages may be dropped by the layer; pages recover from the database by version, so a
lost or duplicated forward costs a catch-up, never a wrong state.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from bus.correlation import Trace, traced
from bus.handlers import EventHandler, Message, register
from live.groups import board_group, customer_group, kitchen_group, menu_group, order_group
from live.layer import GroupSender
from ordering.api_schemas import kitchen_ticket_out
from ordering.events import (
    KITCHEN_TICKET_CHANGED,
    MENU_ITEM_CHANGED,
    MENU_STOCK_CHANGED,
    ORDER_STATUS_CHANGED,
    RESTAURANT_CHANGED,
)
from ordering.selectors import kitchen_tickets
from ordering.status import OrderStatus

# The statuses that put an order on, move it across, or take it off the pick-up board.
BOARD_STATUSES = {
    s.value
    for s in (
        OrderStatus.ACCEPTED,
        OrderStatus.PREPARING,
        OrderStatus.READY,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERED,
    )
}

# Changes of a menu page rather than of an order: no ticket to read.
MENU_EVENTS = (MENU_STOCK_CHANGED, MENU_ITEM_CHANGED, RESTAURANT_CHANGED)

logger = logging.getLogger(__name__)
sender = GroupSender()


def forward_batch(messages: list[Message]) -> list[None]:
    """Send every change of the batch to every group that shows it and has a member now."""
    planned = [(message, _groups(message)) for message in messages]
    # One round trip reads the groups' members; the sends go to them. Nobody misses anything by
    # it: a socket that joins later reads its snapshot after joining, and that already has these
    # changes (they are committed). Tickets are read only for kitchens with a screen open.
    members = sender.members(group for _, groups in planned for group in groups)
    watched = set(members)
    orders = [m for m in messages if m.event not in MENU_EVENTS]
    tickets = _tickets([m.payload.order_id for m in orders if kitchen_group(m.payload.restaurant_id) in watched])
    # Each order's ticket rides on its last change in the batch: it is the newest anyway.
    last_of_order = {m.payload.order_id: index for index, m in enumerate(messages) if m.event not in MENU_EVENTS}
    sends: list[tuple[str, dict[str, Any]]] = []
    for index, (message, groups) in enumerate(planned):
        p = message.payload
        if message.event in MENU_EVENTS:
            sends += [(group, _menu_body(message)) for group in groups if group in watched]
            continue
        kitchen: dict[str, Any] = {
            "type": "kitchen.ticket",
            "order_id": p.order_id,
            "correlation_id": message.envelope.correlation_id,
        }
        ticket = tickets.get(p.order_id) if last_of_order[p.order_id] == index else None
        if ticket is not None:
            kitchen.update(ticket)
        if message.event is ORDER_STATUS_CHANGED:
            update = {
                "type": "order.update",
                "order_id": p.order_id,
                "status": p.status,
                "version": p.version,
                "at": p.at.isoformat(),
                "restaurant_id": p.restaurant_id,
                "correlation_id": message.envelope.correlation_id,
            }
            # The kitchen's screens get the contract's update and the ticket as it is now; the
            # public board the number and the status, nothing personal.
            kitchen.update(status=p.status, version=p.version, at=update["at"])
            bodies = {
                order_group(p.order_id): update,
                customer_group(p.customer_id): update,
                kitchen_group(p.restaurant_id): kitchen,
                board_group(p.restaurant_id): {"type": "board.update", "order_id": p.order_id, "status": p.status},
            }
        else:
            bodies = {kitchen_group(p.restaurant_id): kitchen} if ticket is not None else {}
        forwards = [(group, bodies[group]) for group in groups if group in watched and group in bodies]
        sends += forwards
        with traced(Trace.of(message.envelope)):
            logger.debug(
                "bridge forwards %s of order %s",
                message.envelope.type,
                p.order_id,
                extra={"message_id": message.message_id, "groups": [group for group, _ in forwards]},
            )
    sender.send(sends, members=members)
    return [None] * len(messages)


def _groups(message: Message) -> list[str]:
    """The groups that show this change."""
    p = message.payload
    if message.event in MENU_EVENTS:
        return [menu_group(p.restaurant_id)]
    if message.event is KITCHEN_TICKET_CHANGED:
        return [kitchen_group(p.restaurant_id)]
    groups = [order_group(p.order_id), customer_group(p.customer_id), kitchen_group(p.restaurant_id)]
    if p.status in BOARD_STATUSES:
        groups.append(board_group(p.restaurant_id))
    return groups


def _menu_body(message: Message) -> dict[str, Any]:
    p = message.payload
    if message.event is MENU_STOCK_CHANGED:
        return {"type": "menu.stock", "menu_item_id": p.menu_item_id, "remaining": p.remaining}
    if message.event is MENU_ITEM_CHANGED:
        return {"type": "menu.item", "menu_item_id": p.menu_item_id}
    return {"type": "menu.state", "restaurant_id": p.restaurant_id}


def forward(message: Message) -> None:
    """One message on its own (the runner's path for a single message, or a batch's retry)."""
    forward_batch([message])


def _tickets(order_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The orders' kitchen tickets, JSON-encoded once (the layer carries msgpack: no datetimes)."""
    if not order_ids:
        return {}
    return {
        order.pk: {
            "ticket_revision": order.ticket_revision,
            "ticket_json": json.dumps(kitchen_ticket_out(order), cls=DjangoJSONEncoder),
        }
        for order in kitchen_tickets(order_ids=set(order_ids))
    }


bridge_notification = register(
    EventHandler(
        queue="bridge.notification",
        events=[ORDER_STATUS_CHANGED, KITCHEN_TICKET_CHANGED, *MENU_EVENTS],
        handler=forward,
        batch_handler=forward_batch,
        quick=True,  # Redis, each send bounded (live/layer.py GroupSender)
    )
)
