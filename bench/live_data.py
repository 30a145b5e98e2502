"""The live benchmark's data: its restaurant, customers, tokens and orders, inserted in bulk,
and what it reads and clears between measures (the layer's drop count, the queues)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bench import common


def layer_drops() -> int | None:
    """Messages the channel layer counted as dropped in this run, where it counts them."""
    try:
        from live.layer import dropped_total
    except ImportError:
        return None
    return dropped_total()


def purge_queues() -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    channel = connection.channel()
    for name in ("bridge.notification", "audit.events", "billing.refunds"):
        channel.queue_purge(name)
    connection.close()


def forget_previous_runs() -> None:
    """The last run's shops, customers and orders: the database does not grow run after run."""
    from django.contrib.auth import get_user_model

    from bus.models import OutboxMessage
    from ordering.models import MenuCategory, MenuItem, Order, OrderEvent, OrderLine, Restaurant

    restaurants = Restaurant.objects.filter(slug__startswith="bench-live-")
    orders = Order.objects.filter(restaurant__in=restaurants)
    OrderEvent.objects.filter(order__in=orders)._raw_delete(OrderEvent.objects.db)
    OrderLine.objects.filter(order__in=orders)._raw_delete(OrderLine.objects.db)
    orders.delete()
    get_user_model().objects.filter(username__startswith="bench-live-").delete()
    MenuItem.objects.filter(restaurant__in=restaurants).delete()
    MenuCategory.objects.filter(restaurant__in=restaurants).delete()
    restaurants.delete()
    # Nothing old in the outbox may be published while this run measures.
    OutboxMessage.objects.filter(sent_at__isnull=True).delete()


def seed_tokens(users: list[Any]) -> list[str]:
    """A bearer token per user, stored as api_token_issue stores it: only its digest."""
    from ordering.models import ApiToken
    from ordering.services.accounts import api_token_build  # the one definition of a stored token

    built = [api_token_build(user=u) for u in users]
    ApiToken.objects.bulk_create([row for row, _ in built], batch_size=2000)
    return [pair.token for _, pair in built]


def seed_orders(restaurant: Any, dish: Any, customers: list[Any]) -> list[Any]:
    """Placed orders as order_place leaves them: pending_payment, version 1, one line, event v1."""
    from django.conf import settings
    from django.utils import timezone

    from ordering.models import Order, OrderEvent, OrderLine

    now, day = timezone.now(), timezone.localdate()
    orders = Order.objects.bulk_create(
        [
            Order(
                customer=c,
                restaurant=restaurant,
                status="pending_payment",
                version=1,
                total=dish.price,
                currency=settings.CURRENCY,
                delivery_address="1 Bench Road",
                stock_date=day,
                created_at=now,
            )
            for c in customers
        ],
        batch_size=2000,
    )
    OrderLine.objects.bulk_create(
        [OrderLine(order=o, menu_item=dish, name=dish.name, unit_price=dish.price, quantity=1) for o in orders],
        batch_size=2000,
    )
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(order=o, version=1, status="pending_payment", actor_kind="customer", actor=o.customer, at=now)
            for o in orders
        ],
        batch_size=2000,
    )
    return orders


def seed_shop(tag: str, name: str) -> tuple[Any, Any, Any, str]:
    """A restaurant with one dish and one staff member; the staff member's token."""
    from django.contrib.auth import get_user_model

    from ordering.models import MenuCategory, MenuItem, Restaurant, StaffMembership

    restaurant = Restaurant.objects.create(name=f"Bench live {name} {tag}", slug=f"bench-live-{name}-{tag}")
    category = MenuCategory.objects.create(restaurant=restaurant, name="Mains")
    dish = MenuItem.objects.create(restaurant=restaurant, category=category, name="Bench bowl", price=Decimal("9.50"))
    staff = get_user_model().objects.create(username=f"bench-live-{tag}-{name}-staff", password="!")
    StaffMembership.objects.create(user=staff, restaurant=restaurant)
    return restaurant, dish, staff, seed_tokens([staff])[0]


def seed_customers(tag: str, name: str, count: int) -> list[Any]:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    # "!": an unusable password, as set_unusable_password() leaves it; these only use tokens.
    return model.objects.bulk_create(
        [model(username=f"bench-live-{tag}-{name}-{i}", password="!") for i in range(count)], batch_size=2000
    )


# --- the three measures ------------------------------------------------------------------------
