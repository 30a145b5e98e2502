"""The bridge: forwards the notification exchange into Channels groups through
channels-redis — order status changes to the order's page, the customer and the restaurant's
kitchen; ticket changes (a dish crossed off, the priority flag) to the kitchen; stock changes
to the restaurant's open menu pages.

The kitchen group gets the whole ticket as the database has it now, read once here rather
than once per open screen; its revision tells screens whether it is newer than what they show.

Group messages may be dropped by the layer; pages recover from the database by version, so a
lost or duplicated forward costs a catch-up, never a wrong state.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

from bus.catalog import KITCHEN_TICKET_CHANGED, MENU_STOCK_CHANGED, ORDER_STATUS_CHANGED
from bus.consumer import Consumer, Message, register
from live.groups import board_group, customer_group, kitchen_group, menu_group, order_group
from ordering.api_schemas import kitchen_ticket_out
from ordering.selectors import kitchen_ticket
from ordering.status import OrderStatus

# The statuses that put an order on, move it across, or take it off the pick-up board.
BOARD_STATUSES = {s.value for s in (OrderStatus.ACCEPTED, OrderStatus.PREPARING, OrderStatus.READY,
                                    OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELIVERED)}


def forward(message: Message) -> None:
    """Send the change to every group that shows it."""
    p = message.payload
    layer = get_channel_layer()
    if message.event is MENU_STOCK_CHANGED:
        async_to_sync(layer.group_send)(menu_group(p.restaurant_id), {
            "type": "menu.stock", "menu_item_id": p.menu_item_id, "remaining": p.remaining})
        return
    if message.event is KITCHEN_TICKET_CHANGED:
        async_to_sync(layer.group_send)(kitchen_group(p.restaurant_id), {
            "type": "kitchen.ticket", "order_id": p.order_id, "ticket": _ticket(p.order_id),
            "correlation_id": message.envelope.correlation_id})
        return
    event = {"type": "order.update", "order_id": p.order_id, "status": p.status, "version": p.version,
             "at": p.at.isoformat(), "restaurant_id": p.restaurant_id,
             "correlation_id": message.envelope.correlation_id}
    for group in (order_group(p.order_id), customer_group(p.customer_id)):
        async_to_sync(layer.group_send)(group, event)
    # The kitchen's screens get the contract's update and the ticket as it is now.
    async_to_sync(layer.group_send)(kitchen_group(p.restaurant_id), {
        **event, "type": "kitchen.ticket", "ticket": _ticket(p.order_id)})
    if p.status in BOARD_STATUSES:
        # The public board gets the number and the status, nothing personal.
        async_to_sync(layer.group_send)(board_group(p.restaurant_id),
                                        {"type": "board.update", "order_id": p.order_id, "status": p.status})


def _ticket(order_id: int) -> dict[str, Any] | None:
    """The order as a kitchen ticket, JSON-ready (the layer carries msgpack: no datetimes)."""
    order = kitchen_ticket(order_id=order_id)
    return None if order is None else json.loads(json.dumps(kitchen_ticket_out(order), cls=DjangoJSONEncoder))


bridge_notification = register(Consumer(
    queue="bridge.notification", events=[ORDER_STATUS_CHANGED, KITCHEN_TICKET_CHANGED, MENU_STOCK_CHANGED],
    handler=forward,
))
