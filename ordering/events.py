"""The events ordering publishes: an order placed, every status change, kitchen ticket changes,
a dish's stock, staff edits of the menu and of the restaurant's state, a customer signing up. Declared once here (see bus/catalog.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bus.catalog import Exchange, Payload, declare


class PlacedOption(Payload):
    option_id: int
    group: str
    name: str
    price_delta: Decimal


class PlacedLine(Payload):
    menu_item_id: int
    name: str
    quantity: int
    unit_price: Decimal  # options included
    # Added in place (additive): the options chosen and the customer's note on this dish.
    options: list[PlacedOption] = []
    note: str = ""


class OrderPlaced(Payload):
    order_id: int
    customer_id: int
    restaurant_id: int
    total: Decimal
    currency: str
    version: int
    # Added in place (additive): what was ordered, for analytics' top dishes, and when.
    lines: list[PlacedLine] = []
    placed_at: datetime | None = None
    # Added in place (additive): delivery or pick-up, and the time it was ordered for (None: as
    # soon as possible).
    fulfilment: str = "delivery"
    scheduled_for: datetime | None = None
    # Added in place (additive): "wallet" (billing charges it) or "card" (the provider's webhook pays it).
    payment_method: str = "wallet"


class OrderStatusChanged(Payload):
    order_id: int
    customer_id: int
    restaurant_id: int
    status: str
    from_status: str
    version: int
    at: datetime
    reason: str = ""


class KitchenTicketChanged(Payload):
    order_id: int
    restaurant_id: int
    revision: int
    change: str  # "item_done", "item_undone", "priority"
    menu_item_id: int | None = None


class StockChanged(Payload):
    restaurant_id: int
    menu_item_id: int
    remaining: int  # left today; 0 is sold out


class MenuItemChanged(Payload):
    restaurant_id: int
    menu_item_id: int
    # The dish's photo by size (``ordering.photos.VARIANTS``) as it is now; None without one.
    photo: dict[str, str] | None = None


class RestaurantChanged(Payload):
    restaurant_id: int


class CustomerRegistered(Payload):
    customer_id: int
    username: str
    email: str


ORDER_PLACED = declare("order.placed", Exchange.BILLING, "order.placed", OrderPlaced)
# One event for every status change; the routing key names the new status, so a handler binds
# to just the statuses it cares about (``ORDER_STATUS_CHANGED.binding(status="paid")``) or to
# all of them.
ORDER_STATUS_CHANGED = declare(
    "order.status_changed", Exchange.NOTIFICATION, "order.status.{status}", OrderStatusChanged
)
# A change of a ticket that is not a status change (a dish crossed off, the priority flag):
# every kitchen screen of the restaurant shows it.
KITCHEN_TICKET_CHANGED = declare(
    "kitchen.ticket_changed", Exchange.NOTIFICATION, "kitchen.ticket_changed", KitchenTicketChanged
)
# A dish with a daily limit was reserved or released: open menu pages show it live.
MENU_STOCK_CHANGED = declare("menu.stock_changed", Exchange.NOTIFICATION, "menu.stock_changed", StockChanged)
# The staff edited a dish (name, price, description, photo, stock limit, on sale or not) or added one:
# open menu pages show it as it is now.
MENU_ITEM_CHANGED = declare("menu.item_changed", Exchange.NOTIFICATION, "menu.item_changed", MenuItemChanged)
# The staff changed whether or when the restaurant takes orders (busy mode, closed, hours,
# preparation time) or the menu's layout (a category added, renamed or moved, a dish moved):
# open menu pages show its state and its whole menu as they are now.
RESTAURANT_CHANGED = declare("restaurant.changed", Exchange.NOTIFICATION, "restaurant.changed", RestaurantChanged)
# A customer signed up (the notifier welcomes them).
CUSTOMER_REGISTERED = declare("customer.registered", Exchange.CUSTOMER, "customer.registered", CustomerRegistered)
