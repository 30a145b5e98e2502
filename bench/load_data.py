"""The load benchmark's data and state: its customers and tokens, a fresh vhost, the queues
drained between measures, the orders of a measure and whether the workers caught up, and the
versions of what ran."""

from __future__ import annotations

import shutil
import subprocess
import time
from decimal import Decimal
from typing import Any

from bench import common

TAG = "bench-load"


def forget_previous_runs() -> None:
    """Empty the benchmark database's logs and the last run's orders, so each run starts alike."""
    from django.db import connection

    from ordering.models import Order, OrderEvent, OrderLine, Restaurant

    restaurants = Restaurant.objects.filter(slug__startswith=TAG)
    orders = Order.objects.filter(restaurant__in=restaurants)
    OrderEvent.objects.filter(order__in=orders)._raw_delete(OrderEvent.objects.db)
    OrderLine.objects.filter(order__in=orders)._raw_delete(OrderLine.objects.db)
    with connection.cursor() as cursor:
        # Append-only logs of earlier runs (this database is the benchmark's own).
        for table in (
            "notifications_notification",
            "analytics_dishline",
            "analytics_orderfact",
            "audit_auditrecord",
            "bus_outboxmessage",
            "bus_processedmessage",
            "billing_payment",
        ):
            # Table names are this module's constants (bandit B608).
            cursor.execute(f"DELETE FROM `{table}`")  # nosec B608
    orders.delete()


def seed(customers: int) -> dict[str, Any]:
    """A restaurant with one dish, ``customers`` customers with tokens and plenty of money."""
    from django.contrib.auth import get_user_model

    from bench.live_data import seed_tokens
    from billing.services.wallets import wallet_credit
    from ordering.models import CustomerProfile, MenuCategory, MenuItem, Restaurant

    tag = common.new_id()[:8]
    restaurant = Restaurant.objects.create(name=f"Bench load {tag}", slug=f"{TAG}-{tag}")
    category = MenuCategory.objects.create(restaurant=restaurant, name="Mains")
    dish = MenuItem.objects.create(restaurant=restaurant, category=category, name="Bench bowl", price=Decimal("9.50"))
    model = get_user_model()
    users = model.objects.bulk_create(
        [
            model(username=f"{TAG}-{tag}-{i}", email=f"{TAG}-{tag}-{i}@bench.example", password="!")
            for i in range(customers)
        ],
        batch_size=2000,
    )
    CustomerProfile.objects.bulk_create([CustomerProfile(user=u, default_address="1 Bench Street") for u in users])
    for user in users:
        wallet_credit(user_id=user.pk, amount="10000.00", kind="top_up", key=f"{TAG}-{user.pk}", description="Bench")
    return {
        "restaurant": restaurant,
        "dish": dish,
        "users": users,
        "tokens": seed_tokens(users),
        "body": {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": dish.pk, "quantity": 1}],
            "delivery_address": "1 Bench Street",
        },
    }


def fresh_vhost() -> None:
    """The benchmark's vhost anew: no queue, binding or delayed message of an earlier run (or of
    a topology with other delays) is left to add work while this one measures."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "delete_vhost", common.BENCH_VHOST], capture_output=True, timeout=120)
    subprocess.run([ctl, "add_vhost", common.BENCH_VHOST], check=True, capture_output=True, timeout=120)
    subprocess.run(
        [ctl, "set_permissions", "-p", common.BENCH_VHOST, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def database_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        return int(cursor.fetchone()[1])


def purge_queues() -> None:
    import pika

    from bus.handlers import registered

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    channel = connection.channel()
    for queue, consumer in registered().items():
        if consumer.consume_from is None:  # the dead-letter reader declares no queue of its own
            channel.queue_purge(queue)
    connection.close()


def drained(timeout: float = 600) -> float:
    """Wait until no consumer's queue holds a message waiting (the audit, the notifier and
    analytics still work after every order is paid), so one measure never pays for the last
    one's backlog; the seconds it took."""
    import pika

    from bus.handlers import registered

    started = time.monotonic()
    queues = [queue for queue, consumer in registered().items() if consumer.consume_from is None]
    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    try:
        channel = connection.channel()
        while time.monotonic() - started < timeout:
            if not any(channel.queue_declare(queue, passive=True).method.message_count for queue in queues):
                break
            time.sleep(0.5)
    finally:
        connection.close()
    return round(time.monotonic() - started, 1)


def orders_of(tag: str | None) -> dict[str, int]:
    """Orders by status: a run's (its tag), or every benchmark order (None)."""
    from django.db.models import Count

    from ordering.models import Order

    orders = Order.objects.all() if tag is None else Order.objects.filter(idempotency_key__startswith=f"{tag}-")
    rows = orders.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def caught_up(tag: str | None, created: int, timeout: float) -> dict[str, Any]:
    """Wait until every order of the run (None: of every run) is charged (or failed); what the
    database holds."""
    started = time.monotonic()
    while True:
        statuses = orders_of(tag)
        pending = statuses.get("pending_payment", 0)
        if (pending == 0 and sum(statuses.values()) >= created) or time.monotonic() - started > timeout:
            break
        time.sleep(0.25)
    return {
        "in_database": sum(statuses.values()),
        "paid": statuses.get("paid", 0),
        "payment_failed": statuses.get("payment_failed", 0),
        "still_pending": statuses.get("pending_payment", 0),
        "catch_up_s": round(time.monotonic() - started, 1),
    }


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    found = {
        name: metadata.version(name)
        for name in (
            "daphne",
            "uvicorn",
            "channels",
            "channels-redis",
            "redis",
            "mysqlclient",
            "django-ninja",
            "pydantic",
        )
    }
    found["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()  # (on stderr)
    found["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    found["redis_server"] = common._version(["redis-server", "--version"])
    return found
