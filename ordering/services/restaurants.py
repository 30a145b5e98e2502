"""The staff's writes of their restaurant: dishes and prices, menu categories and the order of
the menu, sold out, busy mode, preparation time and opening hours. Each change is announced through the outbox so open menu pages show it
live. The caller has checked that the user is staff of the restaurant."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from bus.outbox import outbox_write
from ordering.events import MENU_ITEM_CHANGED, RESTAURANT_CHANGED
from ordering.exceptions import CategoryNameTaken, NotFound
from ordering.hours import Schedule
from ordering.models import MenuCategory, MenuItem, Restaurant
from passline.db import one_or_none

logger = logging.getLogger(__name__)

POSITION_MAX = 32767  # PositiveSmallIntegerField


# Shared by the staff's services (this module, dish_options, photos): a dish's or a restaurant's
# change announced to open menus, and the rows locked for a change.
def item_changed(item: MenuItem) -> None:
    outbox_write(
        event=MENU_ITEM_CHANGED,
        aggregate=f"menu_item:{item.pk}",
        payload={"restaurant_id": item.restaurant_id, "menu_item_id": item.pk, "photo": item.photo_urls or None},
    )


def restaurant_changed(restaurant_id: int) -> None:
    outbox_write(
        event=RESTAURANT_CHANGED, aggregate=f"restaurant:{restaurant_id}", payload={"restaurant_id": restaurant_id}
    )


def locked_item(restaurant_id: int, menu_item_id: int) -> MenuItem:
    item = one_or_none(MenuItem.objects.select_for_update().filter(pk=menu_item_id, restaurant_id=restaurant_id))
    if item is None:
        raise NotFound("That dish is not on this restaurant's menu.")
    return item


def _category(restaurant_id: int, category_id: int) -> MenuCategory:
    category = one_or_none(MenuCategory.objects.filter(pk=category_id, restaurant_id=restaurant_id))
    if category is None:
        raise NotFound("There is no such category on this menu.")
    return category


@transaction.atomic
def menu_item_create(
    *,
    restaurant_id: int,
    category_id: int,
    name: str,
    description: str,
    price: Decimal,
    vat_rate: Decimal,
    daily_stock: int | None,
) -> MenuItem:
    """Add a dish to the restaurant's menu, on sale, last of its category."""
    category = _category(restaurant_id, category_id)
    item = MenuItem.objects.create(
        restaurant_id=restaurant_id,
        category=category,
        name=name,
        description=description,
        price=price,
        vat_rate=vat_rate,
        daily_stock=daily_stock,
        position=_next_position(MenuItem.objects.filter(category=category)),
    )
    item_changed(item)
    logger.info("dish added", extra={"restaurant_id": restaurant_id, "menu_item_id": item.pk})
    return item


@transaction.atomic
def menu_item_update(
    *,
    restaurant_id: int,
    menu_item_id: int,
    category_id: int,
    name: str,
    description: str,
    price: Decimal,
    vat_rate: Decimal,
    daily_stock: int | None,
) -> MenuItem:
    """Change a dish. A new daily limit moves what is left today by the same amount, so what was
    already sold today stays sold (never below zero)."""
    item = locked_item(restaurant_id, menu_item_id)
    moved = item.category_id != category_id
    if moved:
        category = _category(restaurant_id, category_id)
        item.category, item.position = category, _next_position(MenuItem.objects.filter(category=category))
    today = timezone.localdate()
    if daily_stock != item.daily_stock:
        if daily_stock is None or item.daily_stock is None or item.stock_date != today:
            item.stock_remaining, item.stock_date = None, None
        elif item.stock_remaining is not None:
            item.stock_remaining = max(item.stock_remaining + daily_stock - item.daily_stock, 0)
    item.name, item.description, item.price, item.daily_stock = name, description, price, daily_stock
    item.vat_rate = vat_rate
    item.save()
    item_changed(item)
    if moved:  # it leaves one section of the menu for another: the whole menu is shown again
        restaurant_changed(restaurant_id)
    logger.info("dish changed", extra={"restaurant_id": restaurant_id, "menu_item_id": item.pk})
    return item


@transaction.atomic
def menu_item_set_available(*, restaurant_id: int, menu_item_id: int, available: bool) -> MenuItem:
    """Take a dish off sale (sold out) or put it back on."""
    item = locked_item(restaurant_id, menu_item_id)
    if item.is_available != available:
        item.is_available = available
        item.save(update_fields=["is_available"])
        item_changed(item)
        logger.info("dish availability", extra={"menu_item_id": item.pk, "available": available})
    return item


def _next_position(siblings: QuerySet[Any]) -> int:
    last = siblings.aggregate(last=Max("position"))["last"]
    return 0 if last is None else min(last + 1, POSITION_MAX)


def _move(siblings: list[Any], pk: int, step: int) -> bool:
    """Move the row ``pk`` one place (``step`` -1 up, +1 down) among its locked ``siblings``, in
    their display order, and number them all 0, 1, 2 … so equal positions (every row starts at
    0) end up distinct. False when it is already first (or last)."""
    index = next(i for i, row in enumerate(siblings) if row.pk == pk)
    other = index + step
    if not 0 <= other < len(siblings):
        return False
    siblings[index], siblings[other] = siblings[other], siblings[index]
    for position, row in enumerate(siblings):
        if row.position != position:
            row.position = position
            row.save(update_fields=["position"])
    return True


@transaction.atomic
def menu_category_create(*, restaurant_id: int, name: str, station: str) -> MenuCategory:
    """Add a category at the end of the menu."""
    locked_restaurant(restaurant_id)  # one writer of the menu's order at a time
    if MenuCategory.objects.filter(restaurant_id=restaurant_id, name=name).exists():
        raise CategoryNameTaken(f"There is already a category called {name}.")
    category = MenuCategory.objects.create(
        restaurant_id=restaurant_id,
        name=name,
        station=station,
        position=_next_position(MenuCategory.objects.filter(restaurant_id=restaurant_id)),
    )
    restaurant_changed(restaurant_id)
    logger.info("category added", extra={"restaurant_id": restaurant_id, "category_id": category.pk})
    return category


@transaction.atomic
def menu_category_update(*, restaurant_id: int, category_id: int, name: str, station: str) -> MenuCategory:
    """Rename a category, or send it to another kitchen station."""
    locked_restaurant(restaurant_id)
    category = _category(restaurant_id, category_id)
    if MenuCategory.objects.filter(restaurant_id=restaurant_id, name=name).exclude(pk=category.pk).exists():
        raise CategoryNameTaken(f"There is already a category called {name}.")
    category.name, category.station = name, station
    try:
        with transaction.atomic():
            category.save(update_fields=["name", "station"])
    except IntegrityError:  # the restaurant row is locked above, so only a direct write gets here
        raise CategoryNameTaken(f"There is already a category called {name}.") from None
    restaurant_changed(restaurant_id)
    logger.info("category changed", extra={"restaurant_id": restaurant_id, "category_id": category.pk})
    return category


@transaction.atomic
def menu_category_move(*, restaurant_id: int, category_id: int, step: int) -> bool:
    """Move a category one place up (``step=-1``) or down (``+1``) on the menu."""
    locked_restaurant(restaurant_id)
    category = _category(restaurant_id, category_id)
    siblings = list(MenuCategory.objects.filter(restaurant_id=restaurant_id).order_by("position", "name", "pk"))
    moved = _move(siblings, category.pk, step)
    if moved:
        restaurant_changed(restaurant_id)
    return moved


@transaction.atomic
def menu_item_move(*, restaurant_id: int, menu_item_id: int, step: int) -> bool:
    """Move a dish one place up (``step=-1``) or down (``+1``) within its category."""
    locked_restaurant(restaurant_id)
    item = locked_item(restaurant_id, menu_item_id)
    siblings = list(MenuItem.objects.filter(category_id=item.category_id).order_by("position", "name", "pk"))
    moved = _move(siblings, item.pk, step)
    if moved:
        restaurant_changed(restaurant_id)
    return moved


def locked_restaurant(restaurant_id: int) -> Restaurant:
    restaurant = one_or_none(Restaurant.objects.select_for_update().filter(pk=restaurant_id))
    if restaurant is None:
        raise NotFound("There is no such restaurant.")
    return restaurant


@transaction.atomic
def restaurant_set_busy(*, restaurant_id: int, minutes: int | None) -> Restaurant:
    """Pause new orders: for ``minutes`` (the pause then ends by itself), or until resumed."""
    restaurant = locked_restaurant(restaurant_id)
    restaurant.busy = True
    restaurant.busy_until = timezone.now() + datetime.timedelta(minutes=minutes) if minutes else None
    restaurant.save(update_fields=["busy", "busy_until"])
    restaurant_changed(restaurant.pk)
    logger.info("restaurant busy", extra={"restaurant_id": restaurant.pk, "minutes": minutes})
    return restaurant


@transaction.atomic
def restaurant_resume(*, restaurant_id: int) -> Restaurant:
    """End busy mode: take orders again."""
    restaurant = locked_restaurant(restaurant_id)
    restaurant.busy, restaurant.busy_until = False, None
    restaurant.save(update_fields=["busy", "busy_until"])
    restaurant_changed(restaurant.pk)
    logger.info("restaurant resumed", extra={"restaurant_id": restaurant.pk})
    return restaurant


@transaction.atomic
def restaurant_update_settings(*, restaurant_id: int, is_open: bool, prep_time_minutes: int) -> Restaurant:
    """Open or close by hand, and the typical preparation time."""
    restaurant = locked_restaurant(restaurant_id)
    restaurant.is_open, restaurant.prep_time_minutes = is_open, prep_time_minutes
    restaurant.save(update_fields=["is_open", "prep_time_minutes"])
    restaurant_changed(restaurant.pk)
    logger.info("restaurant settings", extra={"restaurant_id": restaurant.pk, "is_open": is_open})
    return restaurant


@transaction.atomic
def restaurant_update_fulfilment(
    *,
    restaurant_id: int,
    address: str,
    offers_delivery: bool,
    offers_pickup: bool,
    delivery_fee: Decimal,
    minimum_order: Decimal,
) -> Restaurant:
    """Delivery, pick-up, the delivery fee and minimum order, and the address; orders already
    placed keep the fee they were placed with."""
    restaurant = locked_restaurant(restaurant_id)
    restaurant.address = address.strip()
    restaurant.offers_delivery, restaurant.offers_pickup = offers_delivery, offers_pickup
    restaurant.delivery_fee, restaurant.minimum_order = delivery_fee, minimum_order
    restaurant.full_clean(exclude=["slug", "opening_hours", "hours_exceptions"])
    restaurant.save(update_fields=["address", "offers_delivery", "offers_pickup", "delivery_fee", "minimum_order"])
    restaurant_changed(restaurant.pk)
    logger.info("restaurant fulfilment", extra={"restaurant_id": restaurant.pk})
    return restaurant


@transaction.atomic
def restaurant_set_hours(*, restaurant_id: int, schedule: Schedule) -> Restaurant:
    """Replace the weekly opening hours and the dated exceptions (past dates are dropped)."""
    restaurant = locked_restaurant(restaurant_id)
    today = timezone.localdate()
    kept = Schedule(weekly=schedule.weekly, exceptions={d: r for d, r in schedule.exceptions.items() if d >= today})
    restaurant.opening_hours, restaurant.hours_exceptions = kept.weekly_json(), kept.exceptions_json()
    restaurant.save(update_fields=["opening_hours", "hours_exceptions"])
    restaurant_changed(restaurant.pk)
    logger.info("restaurant hours", extra={"restaurant_id": restaurant.pk})
    return restaurant
