"""The bridge: forwards the notification exchange into Channels groups through
channels-redis — order status changes to the order's page, the customer and the restaurant's
kitchen; stock changes to the restaurant's open menu pages.

Group messages may be dropped by the layer; pages recover from the database by version, so a
lost or duplicated forward costs a catch-up, never a wrong state.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from bus.catalog import MENU_STOCK_CHANGED, ORDER_STATUS_CHANGED
from bus.consumer import Consumer, Message, register
from live.groups import board_group, customer_group, kitchen_group, menu_group, order_group
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
    event = {"type": "order.update", "order_id": p.order_id, "status": p.status, "version": p.version,
             "at": p.at.isoformat(), "restaurant_id": p.restaurant_id,
             "correlation_id": message.envelope.correlation_id}
    for group in (order_group(p.order_id), customer_group(p.customer_id), kitchen_group(p.restaurant_id)):
        async_to_sync(layer.group_send)(group, event)
    if p.status in BOARD_STATUSES:
        # The public board gets the number and the status, nothing personal.
        async_to_sync(layer.group_send)(board_group(p.restaurant_id),
                                        {"type": "board.update", "order_id": p.order_id, "status": p.status})


bridge_notification = register(Consumer(
    queue="bridge.notification", events=[ORDER_STATUS_CHANGED, MENU_STOCK_CHANGED], handler=forward,
))
