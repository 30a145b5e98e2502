"""The customer's cart, kept in the session: a restaurant and dish quantities, never prices.

Prices are looked up when the cart is shown and again, authoritatively, when the order is
placed. A cart holds dishes of one restaurant; adding a dish from another starts a new cart.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from ordering.models import MenuItem, Order, Restaurant
from passline.db import one_or_none

SESSION_KEY = "cart"


@dataclass(frozen=True)
class CartLine:
    item: MenuItem
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.item.price * self.quantity


@dataclass(frozen=True)
class Refill:
    """What :meth:`Cart.refill` did with an earlier order's dishes."""

    added: int
    skipped: list[str]  # dishes no longer on the menu, unavailable or sold out today
    lowered: list[tuple[str, int]]  # dishes put in with fewer than ordered: (name, how many)


class Cart:
    def __init__(self, session: MutableMapping[str, Any]):
        self._session = session
        data = session.get(SESSION_KEY) or {}
        self.restaurant_id: int | None = data.get("restaurant_id")
        self.quantities: dict[int, int] = {int(k): int(v) for k, v in (data.get("items") or {}).items()}

    @property
    def count(self) -> int:
        return sum(self.quantities.values())

    @property
    def is_empty(self) -> bool:
        return not self.quantities

    def add(self, item: MenuItem, quantity: int = 1) -> bool:
        """Add ``quantity`` of ``item``; True when this emptied a cart of another restaurant."""
        replaced = self.restaurant_id is not None and self.restaurant_id != item.restaurant_id and not self.is_empty
        if self.restaurant_id != item.restaurant_id:
            self.quantities = {}
            self.restaurant_id = item.restaurant_id
        new = self.quantities.get(item.pk, 0) + quantity
        self.quantities[item.pk] = max(1, min(new, settings.ORDER_MAX_QUANTITY_PER_LINE))
        self._save()
        return replaced

    def set(self, item_id: int, quantity: int) -> None:
        if quantity <= 0:
            self.quantities.pop(item_id, None)
        elif item_id in self.quantities:
            self.quantities[item_id] = min(quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
        self._save()

    def refill(self, order: Order) -> Refill:
        """Replace the cart with ``order``'s dishes and quantities, as far as they can be ordered
        today: a dish gone from the menu, unavailable or sold out is skipped, a quantity over
        what is left today is lowered. When none can be ordered the cart is left as it was."""
        items = MenuItem.objects.in_bulk([line.menu_item_id for line in order.lines.all()])
        quantities: dict[int, int] = {}
        skipped: list[str] = []
        lowered: list[tuple[str, int]] = []
        for line in order.lines.all():
            item = items.get(line.menu_item_id)
            if item is None or item.restaurant_id != order.restaurant_id or not item.orderable:
                skipped.append(line.name)
                continue
            quantity = min(line.quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
            remaining = item.remaining_today
            if remaining is not None and quantity > remaining:
                quantity = remaining
            if quantity < line.quantity:
                lowered.append((item.name, quantity))
            quantities[item.pk] = quantity
        if quantities:
            self.restaurant_id = order.restaurant_id
            self.quantities = quantities
            self._save()
        return Refill(added=sum(quantities.values()), skipped=skipped, lowered=lowered)

    def clear(self) -> None:
        self.quantities = {}
        self.restaurant_id = None
        self._save()

    def restaurant(self) -> Restaurant | None:
        if self.restaurant_id is None:
            return None
        return one_or_none(Restaurant.objects.filter(pk=self.restaurant_id))

    def lines(self) -> list[CartLine]:
        """The cart's dishes at current prices; dishes that no longer exist drop out."""
        if self.restaurant_id is None:
            return []
        items = MenuItem.objects.filter(pk__in=self.quantities, restaurant_id=self.restaurant_id).order_by(
            "category__position", "position", "name"
        )
        return [CartLine(item=item, quantity=self.quantities[item.pk]) for item in items]

    @staticmethod
    def total(lines: list[CartLine]) -> Decimal:
        return sum((line.line_total for line in lines), Decimal("0.00"))

    def as_items(self) -> list[tuple[int, int]]:
        return sorted(self.quantities.items())

    def _save(self) -> None:
        if not self.quantities:
            self.restaurant_id = None
        self._session[SESSION_KEY] = {
            "restaurant_id": self.restaurant_id,
            "items": {str(k): v for k, v in self.quantities.items()},
        }
