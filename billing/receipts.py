"""An order's receipt: the dishes at their prices and VAT rates of the day, the VAT by rate,
and how and when it was paid. Read only; the page, the PDF and the paid email show it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User

from billing.models import Payment
from billing.selectors import order_payment
from ordering.exceptions import NotFound
from ordering.models import Order, OrderLine
from ordering.selectors import is_restaurant_staff, order_detail
from ordering.status import OrderStatus
from ordering.vat import VatBreakdown, vat_breakdown

# How a charged order was paid: from the customer's wallet, or by card ("Card ending 4242").
WALLET = "Passline wallet"
CARD = "Card"


@dataclass(frozen=True)
class Receipt:
    order: Order
    lines: list[OrderLine]
    vat: VatBreakdown
    payment: Payment | None
    paid_at: datetime.datetime | None  # None: never paid, so there is no receipt to give

    @property
    def paid(self) -> bool:
        return self.paid_at is not None

    @property
    def payment_method(self) -> str:
        if not self.paid:
            return ""
        if self.order.payment_method == Order.PaymentMethod.CARD:
            last4 = self.payment.card_last4 if self.payment is not None else ""
            return f"{CARD} ending {last4}" if last4 else CARD
        return WALLET

    @property
    def charges(self) -> list[tuple[str, Decimal | None, Decimal]]:
        """The receipt's lines that are not dishes: (label, VAT rate or None, amount)."""
        rows: list[tuple[str, Decimal | None, Decimal]] = []
        if self.order.delivery_fee:
            rows.append(("Delivery fee", self.order.delivery_vat_rate, self.order.delivery_fee))
        if self.order.tip:
            rows.append(("Tip (no VAT)", None, self.order.tip))
        return rows

    @property
    def handover(self) -> str:
        """How the customer gets the food, as the receipt says it."""
        if self.order.is_pickup:
            return "Picked up at the restaurant"
        return f"Delivered to {self.order.delivery_address}"

    @property
    def refunded_at(self) -> datetime.datetime | None:
        if self.payment is not None and self.payment.status == Payment.Status.REFUNDED:
            return self.payment.refunded_at
        return None


def line_details(line: OrderLine) -> str:
    """What a receipt prints under a dish's name: its options and the customer's note."""
    parts = [line.options_text] if line.options else []
    if line.note:
        parts.append(f"Note: {line.note}")
    return " · ".join(parts)


def order_receipt(*, user: User, order_id: int) -> Receipt:
    """The receipt of an order, for its customer or the staff of its restaurant; NotFound for
    anyone else, exactly as for an order that does not exist."""
    order = order_detail(order_id=order_id)
    if order.customer_id != user.pk and not is_restaurant_staff(user=user, restaurant_id=order.restaurant_id):
        raise NotFound("There is no such order.")
    payment = order_payment(order_id=order.pk)
    charged = payment is not None and payment.status != Payment.Status.FAILED
    # The moment the order became paid, from its own timeline (the payment row is written in
    # the same transaction).
    paid_at = next((event.at for event in order.events.all() if event.status == OrderStatus.PAID), None)
    if paid_at is None and payment is not None:
        paid_at = payment.created_at
    lines = list(order.lines.all())
    return Receipt(
        order=order,
        lines=lines,
        vat=vat_breakdown(order.taxables(lines)),
        payment=payment,
        paid_at=paid_at if charged else None,
    )
