"""Helpers of the customer-site tests: drive the pages the way a browser does."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from ordering.models import MenuItem

TOKEN_RE = re.compile(r'name="checkout_token" value="([^"]+)"')


def add_to_cart(client: Client, item: MenuItem, quantity: int | str = 1, **extra: object):
    """POST the menu's "Add to cart" form of ``item``."""
    return client.post(
        reverse("restaurant_menu", args=[item.restaurant.slug]), {"item_id": item.pk, "quantity": quantity, **extra}
    )


def checkout_token(client: Client) -> str:
    """Open the checkout page and read the hidden per-render token off the form."""
    response = client.get(reverse("checkout"))
    assert response.status_code == 200
    match = TOKEN_RE.search(response.content.decode())
    assert match, "the checkout form carries a checkout_token"
    return match.group(1)


def cart_of(client: Client) -> dict[str, int]:
    return dict((client.session.get("cart") or {}).get("items") or {})
