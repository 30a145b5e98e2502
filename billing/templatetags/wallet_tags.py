"""The header's wallet balance, for any page that extends base.html."""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.selectors import wallet_summary
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
