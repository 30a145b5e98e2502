"""The messages of money: the balance worker's RPC commands, and the events billing and the
balance worker publish. Declared once here (see bus/catalog.py)."""

from __future__ import annotations

from decimal import Decimal

from bus.catalog import Exchange, Payload, declare


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


class TopUpRequested(Payload):
    top_up_id: int
    user_id: int
    # Where the provider sends the customer's browser back once the card is entered.
    return_url: str


class AcceptanceTimer(Payload):
    order_id: int
    paid_version: int


# RPC commands, served by the balance worker.
BALANCE_DEBIT = declare("balance.debit", Exchange.BALANCE, "balance.debit", WalletMove)
BALANCE_CREDIT = declare("balance.credit", Exchange.BALANCE, "balance.credit", WalletMove)
BALANCE_GET = declare("balance.get", Exchange.BALANCE, "balance.get", WalletQuery)
# Events.
BALANCE_CHANGED = declare("balance.changed", Exchange.BALANCE, "balance.changed.{kind}", BalanceChanged)
PAYMENT_SUCCEEDED = declare("payment.succeeded", Exchange.BILLING, "payment.succeeded", PaymentSettled)
PAYMENT_FAILED = declare("payment.failed", Exchange.BILLING, "payment.failed", PaymentSettled)
PAYMENT_REFUNDED = declare("payment.refunded", Exchange.BILLING, "payment.refunded", PaymentSettled)
# Started when an order is paid; arrives after the acceptance time-out (a delay queue).
ORDER_ACCEPTANCE_TIMER = declare("order.acceptance_timer", Exchange.BILLING, "order.acceptance_timer", AcceptanceTimer)
# A top-up the web recorded as pending: the billing worker asks the provider for its intent.
TOP_UP_REQUESTED = declare("top_up.requested", Exchange.BILLING, "top_up.requested", TopUpRequested)
