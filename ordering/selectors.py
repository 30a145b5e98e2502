"""Reads of ordering: what pages, the API and the kitchen screen show."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone

from ordering import eta
from ordering.exceptions import NotFound
from ordering.hours import slots
from ordering.models import (
    MenuCategory,
    MenuItem,
    Option,
    OptionGroup,
    Order,
    OrderEvent,
    OrderLine,
    Restaurant,
    StaffMembership,
)
from ordering.options import GroupSpec, OptionSpec
from ordering.search import search_terms
from ordering.status import KITCHEN_OPEN, OrderStatus
from passline.db import one_or_none


def restaurant_list(*, cuisine: str = "") -> QuerySet[Restaurant]:
    """Every restaurant, or those of one cuisine (matched regardless of case)."""
    restaurants = Restaurant.objects.all()
    if cuisine:
        restaurants = restaurants.filter(cuisine__iexact=cuisine)
    return restaurants


def order_ahead_slots(
    *, restaurant: Restaurant, day: datetime.date, now: datetime.datetime | None = None
) -> list[datetime.datetime]:
    """The times on the local date ``day`` an order may be placed ahead for (``ordering.hours``):
    in the opening hours, at least the preparation time from now, within ``ORDER_AHEAD_DAYS``;
    none while the staff have closed the restaurant."""
    now = now or timezone.now()
    if not restaurant.is_open:
        return []
    earliest = now + datetime.timedelta(minutes=restaurant.prep_time_minutes)
    latest = now + datetime.timedelta(days=settings.ORDER_AHEAD_DAYS)
    found = slots(schedule=restaurant.schedule, day=day, tz=timezone.get_default_timezone(), earliest=earliest)
    return [moment for moment in found if moment <= latest]


def cuisines() -> list[str]:
    """The cuisines of the restaurants, once each (as first spelled), for the filter."""
    found: dict[str, str] = {}
    for name in Restaurant.objects.exclude(cuisine="").order_by("cuisine").values_list("cuisine", flat=True):
        found.setdefault(name.casefold(), name)
    return sorted(found.values(), key=str.casefold)


@dataclass(frozen=True)
class RestaurantMatch:
    """A restaurant the search found, and the dishes of it that matched (best first)."""

    restaurant: Restaurant
    dishes: list[MenuItem]


# Full-text relevance, in boolean mode (ordering/search.py builds the query, a parameter here).
_RESTAURANT_MATCH = "MATCH (name, cuisine, description) AGAINST (%s IN BOOLEAN MODE)"
_RESTAURANT_SCORES = f"SELECT id, {_RESTAURANT_MATCH} FROM ordering_restaurant WHERE {_RESTAURANT_MATCH}"
_DISH_MATCH = "MATCH (name, description) AGAINST (%s IN BOOLEAN MODE)"
_DISH_SCORES = f"SELECT id, restaurant_id, {_DISH_MATCH} FROM ordering_menuitem WHERE {_DISH_MATCH}"
# At most this many dishes are named per restaurant.
DISHES_PER_MATCH = 5


def restaurant_search(*, text: str, cuisine: str = "") -> list[RestaurantMatch]:
    """Restaurants whose name, cuisine or description matches every word of ``text``, or with
    dishes that do (MariaDB full-text, ordering/search.py), best first; each with its matching
    dishes. Four queries at most: the restaurants' and the dishes' scores, then their rows."""
    terms = search_terms(text)
    if not terms:
        return [RestaurantMatch(restaurant, []) for restaurant in restaurant_list(cuisine=cuisine)]
    scores: dict[int, float] = {}
    dish_scores: dict[int, float] = {}
    dish_rows: list[tuple[int, int, float]]
    if terms.indexed:
        query = terms.boolean_query
        with connection.cursor() as cursor:
            cursor.execute(_RESTAURANT_SCORES, [query, query])
            scores = {pk: float(score) for pk, score in cursor.fetchall()}
            cursor.execute(_DISH_SCORES, [query, query])
            dish_rows = [(pk, restaurant_id, float(score)) for pk, restaurant_id, score in cursor.fetchall()]
    else:
        # Only short words ("bo"): the index does not hold them; names containing each word.
        names = Q()
        for word in terms.words:
            names &= Q(name__icontains=word)
        scores = dict.fromkeys(Restaurant.objects.filter(names).values_list("pk", flat=True), 1.0)
        dish_rows = [
            (pk, restaurant_id, 1.0)
            for pk, restaurant_id in MenuItem.objects.filter(names).values_list("pk", "restaurant_id")
        ]
    by_restaurant: dict[int, list[int]] = {}
    for pk, restaurant_id, score in dish_rows:
        dish_scores[pk] = float(score)
        by_restaurant.setdefault(restaurant_id, []).append(pk)
        scores[restaurant_id] = scores.get(restaurant_id, 0.0) + float(score)
    if not scores:
        return []
    restaurants = restaurant_list(cuisine=cuisine).in_bulk(list(scores))
    dish_ids = [pk for rid in restaurants for pk in by_restaurant.get(rid, [])]
    dishes = MenuItem.objects.order_by().in_bulk(dish_ids) if dish_ids else {}
    matches = []
    for rid in sorted(restaurants, key=lambda rid: (-scores[rid], restaurants[rid].name.casefold())):
        found = sorted(
            (dishes[pk] for pk in by_restaurant.get(rid, []) if pk in dishes),
            key=lambda dish: (-dish_scores[dish.pk], dish.name.casefold()),
        )
        matches.append(RestaurantMatch(restaurants[rid], found[:DISHES_PER_MATCH]))
    return matches


def restaurant_get(*, restaurant_id: int) -> Restaurant:
    restaurant = one_or_none(Restaurant.objects.filter(pk=restaurant_id))
    if restaurant is None:
        raise NotFound("There is no such restaurant.")
    return restaurant


def restaurant_get_by_slug(*, slug: str) -> Restaurant:
    restaurant = one_or_none(Restaurant.objects.filter(slug=slug))
    if restaurant is None:
        raise NotFound("There is no such restaurant.")
    return restaurant


def _with_options(items: QuerySet[MenuItem]) -> QuerySet[MenuItem]:
    """Dishes with their option groups and options: two more queries, however many dishes."""
    return items.prefetch_related(
        Prefetch(
            "option_groups",
            queryset=OptionGroup.objects.order_by("position", "id").prefetch_related(
                Prefetch("options", queryset=Option.objects.order_by("position", "id"))
            ),
        )
    )


def menu_items(*, restaurant_id: int) -> QuerySet[MenuItem]:
    return _with_options(MenuItem.objects.filter(restaurant_id=restaurant_id).select_related("category"))


def group_specs(item: MenuItem) -> tuple[GroupSpec, ...]:
    """A dish's option groups from what :func:`menu_items` or :func:`menu_by_category` prefetched."""
    return tuple(_spec(group) for group in item.option_groups.all())


def _spec(group: OptionGroup) -> GroupSpec:
    return GroupSpec(
        id=group.pk,
        name=group.name,
        min_choices=group.min_choices,
        max_choices=group.max_choices,
        options=tuple(
            OptionSpec(id=o.pk, name=o.name, price_delta=o.price_delta, available=o.is_available)
            for o in sorted(group.options.all(), key=lambda o: (o.position, o.pk))
        ),
    )


def dish_option_groups(*, menu_item_ids: list[int]) -> dict[int, tuple[GroupSpec, ...]]:
    """The option groups of these dishes, as the pure rules of ``ordering.options`` read them."""
    if not menu_item_ids:
        return {}
    specs: dict[int, list[GroupSpec]] = {}
    # Sorted here, not by the database: placing an order sorts nothing in SQL (a few rows).
    queryset = (
        OptionGroup.objects.filter(menu_item_id__in=menu_item_ids)
        .order_by()
        .prefetch_related(Prefetch("options", queryset=Option.objects.order_by()))
    )
    for group in sorted(queryset, key=lambda g: (g.menu_item_id, g.position, g.pk)):
        specs.setdefault(group.menu_item_id, []).append(_spec(group))
    return {pk: tuple(groups) for pk, groups in specs.items()}


@dataclass(frozen=True)
class MenuSection:
    category: MenuCategory
    items: list[MenuItem]


def menu_by_category(*, restaurant: Restaurant, dietary: frozenset[str] = frozenset()) -> list[MenuSection]:
    """The menu grouped by category in display order, empty categories left out; with
    ``dietary`` codes, only the dishes tagged with every one of them (filtered in Python: a
    menu is a few dozen rows, read whole anyway)."""
    categories = MenuCategory.objects.filter(restaurant=restaurant).prefetch_related(
        Prefetch("items", queryset=_with_options(MenuItem.objects.order_by("position", "name")))
    )
    sections = []
    for category in categories:
        items = [item for item in category.items.all() if dietary <= set(item.dietary or ())]
        if items:
            sections.append(MenuSection(category=category, items=items))
    return sections


def staff_menu(*, restaurant: Restaurant) -> list[MenuSection]:
    """The whole menu for its staff: every category, empty ones too, every dish on sale or not."""
    categories = MenuCategory.objects.filter(restaurant=restaurant).prefetch_related(
        Prefetch("items", queryset=MenuItem.objects.order_by("position", "name"))
    )
    return [MenuSection(category=c, items=list(c.items.all())) for c in categories]


def _orders_with_details() -> QuerySet[Order]:
    return Order.objects.select_related("restaurant").prefetch_related(
        "lines", Prefetch("events", queryset=OrderEvent.objects.order_by("version"))
    )


def customer_orders(*, customer: User) -> QuerySet[Order]:
    """The customer's own orders, newest first."""
    return _orders_with_details().filter(customer=customer).order_by("-created_at", "-id")


def customer_order(*, customer: User, order_id: int) -> Order:
    """One of the customer's orders; another customer's order is NotFound, never Forbidden."""
    order = one_or_none(_orders_with_details().filter(pk=order_id, customer=customer))
    if order is None:
        raise NotFound("There is no such order.")
    return order


def order_detail(*, order_id: int) -> Order:
    order = one_or_none(_orders_with_details().filter(pk=order_id))
    if order is None:
        raise NotFound("There is no such order.")
    return order


def is_restaurant_staff(*, user: User, restaurant_id: int) -> bool:
    return (
        bool(user.is_authenticated) and StaffMembership.objects.filter(user=user, restaurant_id=restaurant_id).exists()
    )


def _kitchen_tickets() -> QuerySet[Order]:
    """Orders with what a kitchen ticket shows: lines with their category (the station), events."""
    return Order.objects.select_related("restaurant").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("menu_item__category").order_by("id")),
        Prefetch("events", queryset=OrderEvent.objects.order_by("version")),
    )


def kitchen_open_orders(*, restaurant_id: int) -> QuerySet[Order]:
    """Tickets the kitchen still has to act on, oldest first."""
    return (
        _kitchen_tickets()
        .filter(restaurant_id=restaurant_id, status__in=[s.value for s in KITCHEN_OPEN])
        .order_by("created_at", "id")
    )


def kitchen_tickets(*, order_ids: set[int]) -> QuerySet[Order]:
    """Several orders as kitchen tickets, in one query set (three queries, however many)."""
    return _kitchen_tickets().filter(pk__in=order_ids)


# Closed tickets stay on the kitchen screen this long, where a mistaken "delivered" can be
# recalled; a screen shows at most this many of them.
KITCHEN_RECENT = datetime.timedelta(minutes=15)
KITCHEN_RECENT_LIMIT = 12


def kitchen_recent_orders(*, restaurant_id: int) -> list[Order]:
    """Tickets the kitchen closed in the last minutes (delivered, rejected, cancelled), newest first."""
    since = timezone.now() - KITCHEN_RECENT
    closed = [s.value for s in (OrderStatus.DELIVERED, OrderStatus.REJECTED, OrderStatus.CANCELLED)]
    return list(
        _kitchen_tickets()
        .filter(restaurant_id=restaurant_id, status__in=closed, updated_at__gte=since)
        .order_by("-updated_at", "-id")[:KITCHEN_RECENT_LIMIT]
    )


def kitchen_stations(*, restaurant_id: int) -> list[str]:
    """The stations of a restaurant's menu, in menu order."""
    stations: list[str] = []
    for station in MenuCategory.objects.filter(restaurant_id=restaurant_id).values_list("station", flat=True):
        if station not in stations:
            stations.append(station)
    return stations


def staff_restaurants(*, user: User) -> QuerySet[Restaurant]:
    """The restaurants whose kitchen ``user`` works."""
    return (
        Restaurant.objects.filter(staff__user=user).order_by("name")
        if user.is_authenticated
        else Restaurant.objects.none()
    )


# The statuses the pick-up board shows: in the kitchen, and ready.
BOARD_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.PREPARING, OrderStatus.READY)


def pickup_board_orders(*, restaurant_id: int) -> list[tuple[int, str, str]]:
    """``(order id, status, fulfilment)`` of the orders the board shows, oldest first (no
    personal data)."""
    return list(
        Order.objects.filter(restaurant_id=restaurant_id, status__in=[s.value for s in BOARD_STATUSES])
        .order_by("created_at", "id")
        .values_list("id", "status", "fulfilment")
    )


@dataclass(frozen=True)
class BoardNumber:
    order_id: int
    pickup: bool  # collected at the counter; else a courier takes it


def pickup_board(*, restaurant_id: int) -> dict[str, list[BoardNumber]]:
    """Order numbers only (a public screen shows no personal data): being prepared, and ready;
    each says whether the customer collects it or a courier does."""
    board: dict[str, list[BoardNumber]] = {"preparing": [], "ready": []}
    for order_id, status, fulfilment in pickup_board_orders(restaurant_id=restaurant_id):
        column = "ready" if status == OrderStatus.READY else "preparing"
        board[column].append(BoardNumber(order_id, fulfilment == Order.Fulfilment.PICKUP))
    return board


# How long the kitchen takes to prepare an order: the median over its most recent orders.
PREP_SAMPLE_SIZE = 50
PREP_WINDOW = datetime.timedelta(days=14)


def restaurant_prep_time(*, restaurant: Restaurant, now: datetime.datetime | None = None) -> eta.PrepTime:
    """The restaurant's measured preparation time (accepted to ready) over its last orders placed
    within ``PREP_WINDOW``, or its own ``prep_time_minutes`` when too few orders got that far.

    One query, whatever the number of past orders: the order page runs it on every live update.
    """
    now = now or timezone.now()
    rows = (
        Order.objects.filter(
            restaurant_id=restaurant.pk,
            # Every order that reached ready is in one of these (an order cannot leave once
            # ready), so the (restaurant, status) index narrows the scan.
            status__in=[s.value for s in eta.PAST_READY],
            created_at__gte=now - PREP_WINDOW,
            events__status__in=[OrderStatus.ACCEPTED, OrderStatus.READY],
        )
        .values("pk")
        .annotate(
            accepted_at=Max("events__at", filter=Q(events__status=OrderStatus.ACCEPTED)),
            ready_at=Max("events__at", filter=Q(events__status=OrderStatus.READY)),
        )
        .filter(accepted_at__isnull=False, ready_at__isnull=False)
        .order_by("-ready_at")
        .values_list("accepted_at", "ready_at")[:PREP_SAMPLE_SIZE]
    )
    durations = [ready_at - accepted_at for accepted_at, ready_at in rows]
    return eta.prep_time_from(durations, fallback_minutes=restaurant.prep_time_minutes)


def order_ready_time(*, order: Order, now: datetime.datetime | None = None) -> eta.ReadyTime | None:
    """What the order page says about when ``order`` is ready. Reads the order's prefetched
    events; measures the restaurant's preparation time only while there is something to estimate."""
    now = now or timezone.now()
    at = {event.status: event.at for event in order.events.all()}
    estimating = order.status in eta.ESTIMATED
    prep = restaurant_prep_time(restaurant=order.restaurant, now=now) if estimating else None
    return eta.ready_time(
        status=order.status,
        accepted_at=at.get(OrderStatus.ACCEPTED),
        ready_at=at.get(OrderStatus.READY),
        prep=prep,
        now=now,
    )
