"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from ordering.cart import Cart


def cart(request: HttpRequest) -> dict[str, object]:
    return {
        "cart_count": Cart(request.session).count if hasattr(request, "session") else 0,
        "currency_symbol": settings.CURRENCY_SYMBOL,
    }
