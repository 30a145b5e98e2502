"""Presentation helpers of the customer site: money, status labels and badge tones."""

from __future__ import annotations

import zlib
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.conf import settings

from ordering.status import STATUS_LABELS, OrderStatus

register = template.Library()

# Badge colour families: the CSS has one rule per tone, not one per status.
_TONES = {
    OrderStatus.PENDING_PAYMENT: "waiting",
    OrderStatus.PAID: "info",
    OrderStatus.ACCEPTED: "info",
    OrderStatus.PREPARING: "active",
    OrderStatus.READY: "active",
    OrderStatus.OUT_FOR_DELIVERY: "active",
    OrderStatus.DELIVERED: "success",
    OrderStatus.PAYMENT_FAILED: "danger",
    OrderStatus.REJECTED: "danger",
    OrderStatus.CANCELLED: "muted",
}


@register.filter
def money(value: object) -> str:
    """``12.5`` -> ``€12.50``: the deployment's currency symbol and two decimals."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError, TypeError):
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}{settings.CURRENCY_SYMBOL}{abs(amount):,.2f}"


@register.filter
def sub(value: object, other: object) -> Decimal:
    """``{{ a|sub:b }}``: ``a - b`` as money (Decimal)."""
    return Decimal(str(value)) - Decimal(str(other))


@register.filter
def price_delta(value: object) -> str:
    """An option's effect on the price: ``+€1.50``, ``-€1.00``; nothing for no change."""
    text = money(value)
    if not text or Decimal(str(value)) == 0:
        return ""
    return text if text.startswith("-") else f"+{text}"


@register.filter
def status_label(value: str) -> str:
    try:
        return STATUS_LABELS[OrderStatus(value)]
    except ValueError:
        return str(value)


@register.filter
def status_tone(value: str) -> str:
    try:
        return _TONES[OrderStatus(value)]
    except ValueError:
        return "muted"


@register.filter
def palette(value: object) -> int:
    """One of the six banner palettes of site.css: by id (neighbours differ) or by name."""
    if isinstance(value, int):
        return value % 6
    return zlib.crc32(str(value).encode()) % 6
