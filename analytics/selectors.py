"""Reads of analytics: the dashboard's figures, and who may see them.

The figures come from the analytics tables only (``OrderFact``, ``DishLine``), which the
events fill; none is read from the ordering tables. For one restaurant, or for all
(``restaurant_id=None``), at a moment ``now`` (default: now); "today" is ``now``'s date in
settings.TIME_ZONE, from local midnight to the next, and every window is [start, end).

Precisely, where *placed*, *paid*, *ready* and *ended* are the times the events carry:

- **placed**: order.placed's ``placed_at`` (the envelope's occurred_at when the payload has
  none); **paid**: the ``at`` of the order's step to paid; **ready**: the ``at`` of its latest
  step preparing → ready, provided no later recall (ready → preparing) undid it; **ended**:
  the ``at`` of its step to payment_failed, rejected or cancelled.
- ``orders_today``: orders placed today.
- ``per_minute``: orders placed in each of the last 60 whole minutes, the current (partial)
  minute last, starting at ``series_start``; ``current_rate``: orders placed in the 60 seconds
  up to now, (now − 60 s, now].
- ``paid_orders_today``: orders paid today. ``revenue_gross``: the sum of the amounts charged
  (payment.succeeded) for the orders paid today. ``refunds_count`` / ``refunds_amount``: the
  orders refunded (payment.refunded) that ended today (rejected or cancelled after payment),
  and the sum refunded. ``revenue_net`` = ``revenue_gross`` − ``refunds_amount`` (a refund
  today of an order paid yesterday lowers today's net).
- ``ready_today`` / ``avg_paid_to_ready_seconds``: the orders ready today that were paid, and
  the mean of (ready − paid) over them, in whole seconds rounded half up (None without any).
- ``top_dishes``: over the orders paid today that have not ended (not rejected nor cancelled
  since), each dish's total quantity and amount (quantity × unit price at order time); the
  five largest quantities, ties by menu item id; each named as on the latest (highest id) of
  those orders.
- ``payment_failures``, ``rejections``, ``cancellations``: orders that ended today that way.
- ``restaurants`` (all-restaurants figures only): per restaurant, the same day's counts.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncMinute
from django.utils import dateformat, timezone

from analytics import figures as f
from analytics.models import DishLine, OrderFact
from ordering.models import Restaurant
from ordering.selectors import is_restaurant_staff, restaurant_list, staff_restaurants
from ordering.status import OrderStatus

TOP_DISHES = 5
VIEW_ALL_PERMISSION = "analytics.view_all_restaurants"


@dataclass(frozen=True, kw_only=True)
class TopDish:
    menu_item_id: int
    name: str
    quantity: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class DayCounts:
    """One day's figures that add up across restaurants."""

    orders_today: int
    paid_orders_today: int
    revenue_gross: Decimal
    refunds_count: int
    refunds_amount: Decimal
    revenue_net: Decimal
    ready_today: int
    avg_paid_to_ready_seconds: int | None
    payment_failures: int
    rejections: int
    cancellations: int


@dataclass(frozen=True, kw_only=True)
class RestaurantRow(DayCounts):
    restaurant_id: int
    name: str


@dataclass(frozen=True, kw_only=True)
class Figures(DayCounts):
    restaurant_id: int | None
    as_of: datetime.datetime
    day: datetime.date
    top_dishes: list[TopDish]
    series_start: datetime.datetime
    per_minute: list[int]
    current_rate: int
    # All restaurants' figures only: each restaurant's, by name.
    restaurants: list[RestaurantRow] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready: money as strings ("12.50"), times as ISO 8601, the mean also as m:ss."""
        data = asdict(self)
        for key in ("revenue_gross", "refunds_amount", "revenue_net"):
            data[key] = str(data[key])
        for row in data["restaurants"]:
            for key in ("revenue_gross", "refunds_amount", "revenue_net"):
                row[key] = str(row[key])
            row["avg_paid_to_ready"] = f.duration_label(row["avg_paid_to_ready_seconds"])
        for dish in data["top_dishes"]:
            dish["amount"] = str(dish["amount"])
        data["avg_paid_to_ready"] = f.duration_label(self.avg_paid_to_ready_seconds)
        data["as_of"] = self.as_of.isoformat()
        data["as_of_us"] = as_of_us(self.as_of)
        data["day"] = self.day.isoformat()
        data["day_label"] = dateformat.format(self.day, "l j F Y")
        data["series_start"] = self.series_start.isoformat()
        data["series_start_ms"] = int(self.series_start.timestamp() * 1000)
        return data


def as_of_us(moment: datetime.datetime) -> int:
    """A moment as integer microseconds since the epoch: frames compare by it."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _facts(restaurant_id: int | None) -> QuerySet[OrderFact]:
    facts = OrderFact.objects.all()
    return facts if restaurant_id is None else facts.filter(restaurant_id=restaurant_id)


def _day_aggregates(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    placed = Q(placed_at__gte=start, placed_at__lt=end)
    paid = Q(paid_at__gte=start, paid_at__lt=end)
    ready = Q(ready_at__gte=start, ready_at__lt=end, paid_at__isnull=False, ready_version__gt=F("unready_version"))
    ended = Q(exit_at__gte=start, exit_at__lt=end)
    refunded = ended & Q(refunded_amount__isnull=False)
    return {
        "orders_today": Count("pk", filter=placed),
        "paid_orders_today": Count("pk", filter=paid),
        "revenue_gross": Sum("paid_amount", filter=paid),
        "refunds_count": Count("pk", filter=refunded),
        "refunds_amount": Sum("refunded_amount", filter=refunded),
        "ready_today": Count("pk", filter=ready),
        # TIMESTAMPDIFF in microseconds, summed by the database: exact, no float.
        "ready_total": Sum(ExpressionWrapper(F("ready_at") - F("paid_at"), output_field=DurationField()), filter=ready),
        "payment_failures": Count("pk", filter=ended & Q(exit_status=OrderStatus.PAYMENT_FAILED.value)),
        "rejections": Count("pk", filter=ended & Q(exit_status=OrderStatus.REJECTED.value)),
        "cancellations": Count("pk", filter=ended & Q(exit_status=OrderStatus.CANCELLED.value)),
    }


def _touched_on(start: datetime.datetime) -> Q:
    """Rows with anything on or after ``start`` (lets the database use the time indexes)."""
    return Q(placed_at__gte=start) | Q(paid_at__gte=start) | Q(ready_at__gte=start) | Q(exit_at__gte=start)


def _day_counts(row: Mapping[str, Any]) -> dict[str, Any]:
    gross, refunds = f.money(row["revenue_gross"]), f.money(row["refunds_amount"])
    return {
        "orders_today": row["orders_today"],
        "paid_orders_today": row["paid_orders_today"],
        "revenue_gross": gross,
        "refunds_count": row["refunds_count"],
        "refunds_amount": refunds,
        "revenue_net": gross - refunds,
        "ready_today": row["ready_today"],
        "avg_paid_to_ready_seconds": f.mean_seconds(row["ready_total"], row["ready_today"]),
        "payment_failures": row["payment_failures"],
        "rejections": row["rejections"],
        "cancellations": row["cancellations"],
    }


def _top_dishes(restaurant_id: int | None, start: datetime.datetime, end: datetime.datetime) -> list[TopDish]:
    lines = DishLine.objects.filter(order__paid_at__gte=start, order__paid_at__lt=end, order__exit_status="")
    if restaurant_id is not None:
        lines = lines.filter(order__restaurant_id=restaurant_id)
    top = list(
        lines.values("menu_item_id")
        .annotate(sold=Sum("quantity"), takings=Sum(F("quantity") * F("unit_price")), last_order=Max("order_id"))
        .order_by("-sold", "menu_item_id")[:TOP_DISHES]
    )
    names = (
        dict(
            DishLine.objects.filter(
                Q(*[Q(menu_item_id=row["menu_item_id"], order_id=row["last_order"]) for row in top], _connector=Q.OR)
            ).values_list("menu_item_id", "name")
        )
        if top
        else {}
    )
    return [
        TopDish(
            menu_item_id=row["menu_item_id"],
            name=names.get(row["menu_item_id"], ""),
            quantity=row["sold"],
            amount=f.money(row["takings"]),
        )
        for row in top
    ]


def _per_minute(restaurant_id: int | None, now: datetime.datetime) -> tuple[list[int], int]:
    start = f.series_start(now)
    # Minutes are the same in every time zone (offsets are whole minutes), so the database
    # groups by UTC minute and needs no time-zone tables.
    rows = (
        _facts(restaurant_id)
        .filter(placed_at__gte=start, placed_at__lt=f.minute_floor(now) + f.MINUTE)
        .annotate(minute=TruncMinute("placed_at", tzinfo=datetime.UTC))
        .values("minute")
        .annotate(orders=Count("pk"))
        .order_by()
    )
    rate = _facts(restaurant_id).filter(placed_at__gt=now - f.RATE_WINDOW, placed_at__lte=now).count()
    return f.per_minute({row["minute"]: row["orders"] for row in rows}, now), rate


def dashboard_figures(*, restaurant_id: int | None, now: datetime.datetime | None = None) -> Figures:
    """The dashboard's figures for one restaurant, or all (None), at ``now`` (see the module's docstring)."""
    now = now or timezone.now()
    start, end = f.day_bounds(now, settings.TIME_ZONE)
    aggregates = _day_aggregates(start, end)
    facts = _facts(restaurant_id).filter(_touched_on(start))
    totals = facts.aggregate(**aggregates)
    restaurants: list[RestaurantRow] = []
    if restaurant_id is None:
        by_restaurant = {
            row["restaurant_id"]: row for row in facts.values("restaurant_id").annotate(**aggregates).order_by()
        }
        empty = {key: None if key in {"revenue_gross", "refunds_amount", "ready_total"} else 0 for key in aggregates}
        restaurants = [
            RestaurantRow(restaurant_id=r.pk, name=r.name, **_day_counts(by_restaurant.get(r.pk, empty)))
            for r in restaurant_list()
        ]
    per_minute, rate = _per_minute(restaurant_id, now)
    return Figures(
        restaurant_id=restaurant_id,
        as_of=now,
        day=start.date(),
        **_day_counts(totals),
        top_dishes=_top_dishes(restaurant_id, start, end),
        series_start=f.series_start(now),
        per_minute=per_minute,
        current_rate=rate,
        restaurants=restaurants,
    )


# --- who may see what ---------------------------------------------------------------------------


def sees_all_restaurants(*, user: User) -> bool:
    """Operators: superusers, and users given the ``view_all_restaurants`` permission."""
    return bool(user.is_authenticated and user.is_active and user.has_perm(VIEW_ALL_PERMISSION))


def dashboard_allowed(*, user: User, restaurant_id: int | None) -> bool:
    """All restaurants: operators only. One restaurant: its staff, or an operator."""
    if not user.is_authenticated:
        return False
    if sees_all_restaurants(user=user):
        return True
    return restaurant_id is not None and is_restaurant_staff(user=user, restaurant_id=restaurant_id)


def dashboard_restaurants(*, user: User) -> list[Restaurant]:
    """The restaurants whose dashboard the user may open, by name."""
    if sees_all_restaurants(user=user):
        return list(restaurant_list().order_by("name"))
    return list(staff_restaurants(user=user))
