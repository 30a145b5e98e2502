"""Reads of ordering: what pages, the API and the kitchen screen show."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from ordering.exceptions import NotFound
from ordering.models import MenuCategory, MenuItem, Order, OrderEvent, Restaurant, StaffMembership
from ordering.status import KITCHEN_OPEN, OrderStatus


def restaurant_list() -> QuerySet[Restaurant]:
    return Restaurant.objects.all()


def restaurant_get(*, restaurant_id: int) -> Restaurant:
    restaurant = Restaurant.objects.filter(pk=restaurant_id).first()
    if restaurant is None:
        raise NotFound("There is no such restaurant.")
    return restaurant


def restaurant_get_by_slug(*, slug: str) -> Restaurant:
    restaurant = Restaurant.objects.filter(slug=slug).first()
    if restaurant is None:
        raise NotFound("There is no such restaurant.")
    return restaurant


def menu_items(*, restaurant_id: int) -> QuerySet[MenuItem]:
    return MenuItem.objects.filter(restaurant_id=restaurant_id).select_related("category")


@dataclass(frozen=True)
class MenuSection:
    category: MenuCategory
    items: list[MenuItem]


def menu_by_category(*, restaurant: Restaurant) -> list[MenuSection]:
    """The menu grouped by category in display order, empty categories left out."""
    categories = MenuCategory.objects.filter(restaurant=restaurant).prefetch_related(
        Prefetch("items", queryset=MenuItem.objects.order_by("position", "name"))
    )
    return [MenuSection(category=c, items=list(c.items.all())) for c in categories if c.items.all()]


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.select_related("restaurant").prefetch_related(
        "lines", Prefetch("events", queryset=OrderEvent.objects.order_by("version"))
    )


def customer_orders(*, customer: AbstractBaseUser) -> QuerySet[Order]:
    """The customer's own orders, newest first."""
    return _orders_with_details().filter(customer=customer).order_by("-created_at", "-id")


def customer_order(*, customer: AbstractBaseUser, order_id: int) -> Order:
    """One of the customer's orders; another customer's order is NotFound, never Forbidden."""
    order = _orders_with_details().filter(pk=order_id, customer=customer).first()
    if order is None:
        raise NotFound("There is no such order.")
    return order


def order_detail(*, order_id: int) -> Order:
    order = _orders_with_details().filter(pk=order_id).first()
    if order is None:
        raise NotFound("There is no such order.")
    return order


def is_restaurant_staff(*, user: AbstractBaseUser, restaurant_id: int) -> bool:
    return bool(user.is_authenticated) and StaffMembership.objects.filter(user=user, restaurant_id=restaurant_id).exists()


def kitchen_open_orders(*, restaurant_id: int) -> QuerySet[Order]:
    """Tickets the kitchen still has to act on, oldest first."""
    return (
        _orders_with_details()
        .filter(restaurant_id=restaurant_id, status__in=[s.value for s in KITCHEN_OPEN])
        .order_by("created_at", "id")
    )


def pickup_board(*, restaurant_id: int) -> dict[str, list[int]]:
    """Order numbers only (a public screen shows no personal data): being prepared, and ready."""
    rows = Order.objects.filter(
        restaurant_id=restaurant_id, status__in=[OrderStatus.ACCEPTED, OrderStatus.PREPARING, OrderStatus.READY]
    ).order_by("created_at", "id").values_list("id", "status")
    board: dict[str, list[int]] = {"preparing": [], "ready": []}
    for order_id, status in rows:
        board["ready" if status == OrderStatus.READY else "preparing"].append(order_id)
    return board
