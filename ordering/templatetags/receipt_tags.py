"""Receipts on other pages and in emails: whether an order was paid (it has a receipt), its VAT
breakdown, and absolute links for emails."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

from ordering.models import Order
from ordering.status import OrderStatus
from ordering.vat import Taxable, VatBreakdown, vat_breakdown

register = template.Library()


@register.filter
def was_paid(order: Order) -> bool:
    """The order reached ``paid`` (so it has a receipt). Reads its prefetched timeline."""
    return any(event.status == OrderStatus.PAID for event in order.events.all())


@register.filter
def vat_table(lines: Iterable[Taxable]) -> VatBreakdown:
    """The VAT in these lines' amounts, by rate (``ordering.vat``)."""
    return vat_breakdown(lines)


@register.filter
def order_vat_table(order: Order, lines: Iterable[Taxable]) -> VatBreakdown:
    """``{{ order|order_vat_table:lines }}``: the VAT of the dishes and the delivery fee."""
    return vat_breakdown(order.taxables(lines))


@register.simple_tag
def absolute_url(name: str, *args: Any) -> str:
    """``{% absolute_url 'order_receipt' order.pk %}``: the page's address on ``SITE_URL``."""
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)
