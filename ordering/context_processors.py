"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from ordering.cart import Cart


def cart(request: HttpRequest) -> dict[str, object]:
    """The cart's count for the header, and whether the header is a customer's at all: restaurant
    staff see the kitchen's links there, not a wallet and a cart."""
    user = getattr(request, "user", None)
    is_restaurant_staff = bool(user is not None and user.is_authenticated and user.staff_memberships.exists())
    return {
        "cart_count": Cart(request.session).count if hasattr(request, "session") else 0,
        "currency_symbol": settings.CURRENCY_SYMBOL,
        "is_restaurant_staff": is_restaurant_staff,
    }
