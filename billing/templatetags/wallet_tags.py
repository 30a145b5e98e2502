"""Money on other apps' pages: the header's wallet balance (any page that extends base.html),
the checkout's wallet check and an order's payment — so that ordering's views and templates
need nothing of billing but ``{% load wallet_tags %}``."""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.selectors import order_payment, wallet_summary
from ordering.templatetags.site_tags import money as format_money

register = template.Library()


@register.simple_tag(takes_context=True)
def wallet_balance(context: template.Context) -> Decimal | None:
    """The signed-in user's balance, or None for a visitor. Read once per request."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return None
    if not hasattr(request, "_wallet_balance"):
        request._wallet_balance = wallet_summary(user=user).balance
    balance: Decimal = request._wallet_balance
    return balance


@register.filter
def signed_money(value: object) -> str:
    """A ledger amount with its sign spelled out: ``+€20.00``, ``−€7.50``."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return ""
    return ("+" if amount > 0 else "\u2212") + format_money(abs(amount))


@register.simple_tag(takes_context=True)
def wallet_check(context: template.Context, total: Decimal) -> dict[str, object]:
    """For the checkout: the balance, and whether (and by how much) it is short of ``total``.
    Payment is taken after the order is placed; a short wallet does not block checkout (the
    order ends in payment_failed), but the customer is told first."""
    balance = wallet_balance(context) or Decimal("0.00")
    return {"balance": balance, "short": balance < total, "shortfall": max(total - balance, Decimal("0.00"))}


@register.simple_tag
def payment_of(order: object) -> object:
    """The order's payment (charged, failed or refunded), or None before one is taken."""
    return order_payment(order_id=order.pk)  # type: ignore[attr-defined]
