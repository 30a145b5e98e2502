"""Every message type, declared once: name, exchange, routing key, payload schema, version.

Publishers, consumers, the bridge and the WebSocket consumers import these objects; no
routing-key string appears at a call site. Payload schemas are pydantic models: a payload is
validated when it is written to the outbox and again when it is consumed (the broker is a
trust boundary). Schema changes are additive; a breaking change is a new ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Exchange:
    """Names of the exchanges (see bus/topology.py for their kinds and bindings)."""

    BILLING = "billing"
    NOTIFICATION = "notification"
    CUSTOMER = "customer"
    BALANCE = "balance"
    AUDIT = "audit"


class InvalidPayload(ValueError):
    """A payload that does not match its event type's schema."""

    def __init__(self, event: str, error: ValidationError | str):
        detail = error if isinstance(error, str) else "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in error.errors()
        )
        super().__init__(f"{event}: invalid payload: {detail}")
        self.event = event


class Payload(BaseModel):
    # Unknown fields are kept, not refused: a newer publisher may add fields (additive changes).
    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class EventType:
    name: str
    exchange: str
    routing_key: str
    schema: type[Payload]
    version: int = 1

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as JSON-ready data, or InvalidPayload."""
        try:
            return self.schema.model_validate(payload).model_dump(mode="json")
        except ValidationError as error:
            raise InvalidPayload(self.name, error) from None


# --- payloads ------------------------------------------------------------------------------


class PlacedLine(Payload):
    menu_item_id: int
    name: str
    quantity: int
    unit_price: Decimal


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


# --- the catalog ---------------------------------------------------------------------------

ORDER_PLACED = EventType("order.placed", Exchange.BILLING, "order.placed", OrderPlaced)
# One event for every status change; the routing key names the new status, so a consumer can
# bind to just the statuses it cares about ("order.status.paid") or to all ("order.status.*").
ORDER_STATUS_CHANGED = EventType("order.status_changed", Exchange.NOTIFICATION, "order.status.{status}", OrderStatusChanged)

# A change of a ticket that is not a status change (a dish crossed off, the priority flag):
# every kitchen screen of the restaurant shows it.
KITCHEN_TICKET_CHANGED = EventType("kitchen.ticket_changed", Exchange.NOTIFICATION, "kitchen.ticket_changed",
                                   KitchenTicketChanged)

EVENTS: dict[str, EventType] = {e.name: e for e in [ORDER_PLACED, ORDER_STATUS_CHANGED, KITCHEN_TICKET_CHANGED]}


def event_type(name: str) -> EventType:
    try:
        return EVENTS[name]
    except KeyError:
        raise KeyError(f"unknown event type {name!r}") from None


def routing_key_for(event: EventType, payload: dict[str, Any]) -> str:
    """The event's routing key with payload fields filled in (``order.status.{status}``)."""
    try:
        return event.routing_key.format(**payload)
    except KeyError as missing:
        raise InvalidPayload(event.name, f"routing key needs {missing}") from None


# --- money: commands (imperative) and events --------------------------------------------------


class WalletMove(Payload):
    user_id: int
    amount: Decimal
    key: str
    kind: str
    description: str
    order_id: int | None = None


class WalletQuery(Payload):
    user_id: int


class BalanceChanged(Payload):
    user_id: int
    entry_id: int
    kind: str
    amount: Decimal
    balance: Decimal
    order_id: int | None = None


class PaymentSettled(Payload):
    order_id: int
    customer_id: int
    amount: Decimal
    reason: str = ""
    # Added in place (additive): analytics counts money per restaurant.
    restaurant_id: int | None = None


class AcceptanceTimer(Payload):
    order_id: int
    paid_version: int


# RPC commands, served by the balance worker.
BALANCE_DEBIT = EventType("balance.debit", Exchange.BALANCE, "balance.debit", WalletMove)
BALANCE_CREDIT = EventType("balance.credit", Exchange.BALANCE, "balance.credit", WalletMove)
BALANCE_GET = EventType("balance.get", Exchange.BALANCE, "balance.get", WalletQuery)
# Events.
BALANCE_CHANGED = EventType("balance.changed", Exchange.BALANCE, "balance.changed.{kind}", BalanceChanged)
PAYMENT_SUCCEEDED = EventType("payment.succeeded", Exchange.BILLING, "payment.succeeded", PaymentSettled)
PAYMENT_FAILED = EventType("payment.failed", Exchange.BILLING, "payment.failed", PaymentSettled)
PAYMENT_REFUNDED = EventType("payment.refunded", Exchange.BILLING, "payment.refunded", PaymentSettled)
# Started when an order is paid; arrives after the acceptance time-out (a delay queue).
ORDER_ACCEPTANCE_TIMER = EventType("order.acceptance_timer", Exchange.BILLING, "order.acceptance_timer", AcceptanceTimer)

EVENTS.update({e.name: e for e in [
    BALANCE_DEBIT, BALANCE_CREDIT, BALANCE_GET, BALANCE_CHANGED, PAYMENT_SUCCEEDED, PAYMENT_FAILED,
    PAYMENT_REFUNDED, ORDER_ACCEPTANCE_TIMER,
]})


# --- menus -------------------------------------------------------------------------------------


class StockChanged(Payload):
    restaurant_id: int
    menu_item_id: int
    remaining: int  # left today; 0 is sold out


# A dish with a daily limit was reserved or released: open menu pages show it live.
MENU_STOCK_CHANGED = EventType("menu.stock_changed", Exchange.NOTIFICATION, "menu.stock_changed", StockChanged)
EVENTS[MENU_STOCK_CHANGED.name] = MENU_STOCK_CHANGED


# --- customers: user-specific communication (the ``customer`` exchange) ----------------------


class CustomerRegistered(Payload):
    customer_id: int
    username: str
    email: str


class CustomerNotify(Payload):
    notification_id: int
    customer_id: int
    channel: str  # "email", "sms", "push"


# A customer signed up (the notifier welcomes them).
CUSTOMER_REGISTERED = EventType("customer.registered", Exchange.CUSTOMER, "customer.registered", CustomerRegistered)
# Command: deliver one planned notification by one channel (a queue per channel, so a failing
# SMS provider delays only SMS).
CUSTOMER_NOTIFY = EventType("customer.notify", Exchange.CUSTOMER, "customer.notify.{channel}", CustomerNotify)
EVENTS.update({e.name: e for e in [CUSTOMER_REGISTERED, CUSTOMER_NOTIFY]})

# The steps of an order a customer is told about. Their events stay where their domain
# publishes them; the topology binds the ``customer`` exchange to each of them
# (exchange-to-exchange), so whatever concerns a customer passes through ``customer``.
CUSTOMER_FEEDS: tuple[tuple[str, str], ...] = (
    *((Exchange.NOTIFICATION, f"order.status.{status}") for status in
      ("paid", "accepted", "ready", "out_for_delivery", "delivered", "payment_failed")),
    (Exchange.BILLING, PAYMENT_REFUNDED.routing_key),
)
