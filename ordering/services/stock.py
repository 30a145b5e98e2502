"""Daily stock: reserved when an order is placed, released when it fails, never oversold.

Each reservation is one conditional UPDATE, so InnoDB's row lock serialises concurrent
checkouts of the same dish and the ``WHERE`` refuses the one that would go below zero.
The count belongs to ``stock_date``: the first reservation of a new day starts again from
``daily_stock``, so no midnight job is needed.
"""

from __future__ import annotations

import datetime

from django.db.models import Case, F, Q, When

from bus.outbox import outbox_write
from ordering.events import MENU_STOCK_CHANGED
from ordering.models import MenuItem
from passline.db import one_or_none


def _announce(menu_item_id: int) -> None:
    """Tell open menu pages what is left of a limited dish (in the caller's transaction)."""
    item = one_or_none(MenuItem.objects.filter(pk=menu_item_id).values("restaurant_id", "stock_remaining"))
    if item is not None and item["stock_remaining"] is not None:
        outbox_write(
            event=MENU_STOCK_CHANGED,
            aggregate=f"menu_item:{menu_item_id}",
            payload={
                "restaurant_id": item["restaurant_id"],
                "menu_item_id": menu_item_id,
                "remaining": max(item["stock_remaining"], 0),
            },
        )


def stock_reserve(*, menu_item_id: int, quantity: int, day: datetime.date) -> bool:
    """Take ``quantity`` from the item's stock for ``day``; False when there is not enough.

    Items without a daily limit always succeed. Call inside the order's transaction.
    """
    enough_today = Q(stock_date=day, stock_remaining__gte=quantity)
    enough_new_day = ~Q(stock_date=day) | Q(stock_date__isnull=True) | Q(stock_remaining__isnull=True)
    updated = (
        MenuItem.objects.filter(pk=menu_item_id, daily_stock__isnull=False)
        .filter(enough_today | (enough_new_day & Q(daily_stock__gte=quantity)))
        # MySQL evaluates SET assignments left to right, each seeing the ones before it:
        # stock_remaining must be computed while stock_date still holds the old day.
        .update(
            stock_remaining=Case(
                When(stock_date=day, stock_remaining__isnull=False, then=F("stock_remaining") - quantity),
                default=F("daily_stock") - quantity,
            ),
            stock_date=day,
        )
    )
    if updated:
        _announce(menu_item_id)
        return True
    # Nothing updated: either the item has no limit (fine) or there is not enough.
    return not MenuItem.objects.filter(pk=menu_item_id, daily_stock__isnull=False).exists()


def stock_release(*, menu_item_id: int, quantity: int, day: datetime.date) -> None:
    """Give back what an order of ``day`` reserved. A past day's stock is gone with the day."""
    if MenuItem.objects.filter(
        pk=menu_item_id, daily_stock__isnull=False, stock_date=day, stock_remaining__isnull=False
    ).update(stock_remaining=F("stock_remaining") + quantity):
        _announce(menu_item_id)
