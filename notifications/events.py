"""The notifier's command, and what reaches the ``customer`` exchange (user-specific
communication). Declared once here (see bus/catalog.py)."""

from __future__ import annotations

from billing.events import PAYMENT_REFUNDED
from bus.catalog import Exchange, Payload, bind_exchange, declare
from ordering.events import ORDER_STATUS_CHANGED


class CustomerNotify(Payload):
    notification_id: int
    customer_id: int
    channel: str  # "email", "sms", "push"


# Command: deliver one planned notification by one channel (a queue per channel, so a failing
# SMS provider delays only SMS).
CUSTOMER_NOTIFY = declare("customer.notify", Exchange.CUSTOMER, "customer.notify.{channel}", CustomerNotify)

# The steps of an order a customer is told about. Their events stay where their domain
# publishes them; the topology binds the ``customer`` exchange to each of them
# (exchange-to-exchange), so whatever concerns a customer passes through ``customer``.
CUSTOMER_FEEDS: tuple[tuple[str, str], ...] = (
    *(
        ORDER_STATUS_CHANGED.binding(status=status)
        for status in ("paid", "accepted", "ready", "out_for_delivery", "delivered", "payment_failed")
    ),
    PAYMENT_REFUNDED.binding(),
)
for _source, _key in CUSTOMER_FEEDS:
    bind_exchange(Exchange.CUSTOMER, _source, _key)
