"""Billing benchmark: orders per second from ``order.placed`` to ``paid`` (relay, billing
worker, balance worker over RPC, MariaDB), and the debit RPC's round trip.

Usage: ``make bench`` or ``python -m bench.billing [--orders N] [--billing-workers K]``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import common


def _setup_shop(customers: int):
    from django.contrib.auth import get_user_model

    from billing.services.wallets import wallet_credit
    from ordering.models import MenuCategory, MenuItem, Restaurant

    tag = uuid.uuid4().hex[:8]
    restaurant = Restaurant.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    category = MenuCategory.objects.create(restaurant=restaurant, name="Mains")
    dish = MenuItem.objects.create(restaurant=restaurant, category=category, name="Bench bowl", price=Decimal("9.50"))
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench-{tag}-{i}") for i in range(customers)
    )
    for user in users:
        wallet_credit(user_id=user.pk, amount="5000.00", kind="top_up", key=f"bench:{user.pk}", description="bench")
    return restaurant, dish, users


def _purge() -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    channel = connection.channel()
    for queue in (
        "audit.events",
        "billing.order_placed",
        "billing.refunds",
        "billing.acceptance_timeout",
        "balance.commands",
    ):
        channel.queue_purge(queue)
    connection.close()


def rpc_round_trip(calls: int) -> dict[str, float]:
    from billing.events import BALANCE_CREDIT
    from billing.models import LedgerEntry
    from bus.rpc import RpcClient

    _, _, users = _setup_shop(1)
    worker = common.spawn("consume", "balance.commands")
    client = RpcClient()
    try:
        common.wait_for(lambda: _consumers("balance.commands") == 1, 60, "the balance worker")
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            client.call(
                BALANCE_CREDIT,
                {
                    "user_id": users[0].pk,
                    "amount": "0.01",
                    "key": f"rtt:{uuid.uuid4().hex}",
                    "kind": LedgerEntry.Kind.TOP_UP,
                    "description": "bench",
                },
            )
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
        common.stop(worker)
    return {
        "calls": calls,
        "p50_ms": round(common.percentile(timings, 50), 2),
        "p99_ms": round(common.percentile(timings, 99), 2),
        "mean_ms": round(sum(timings) / calls, 2),
    }


def _consumers(queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(common.bench_rabbitmq_url()))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        connection.close()


def orders_to_paid(orders: int, billing_workers: int) -> dict[str, float]:
    from django.db.models import Max, Min

    from bus.models import OutboxMessage
    from ordering.models import Order, OrderEvent
    from ordering.services import OrderRequest, order_place

    _purge()
    OutboxMessage.objects.filter(sent_at__isnull=True).delete()
    restaurant, dish, users = _setup_shop(50)
    placed = []
    for i in range(orders):
        order, _ = order_place(
            customer=users[i % len(users)],
            request=OrderRequest(restaurant_id=restaurant.pk, items=[(dish.pk, 1)], delivery_address="1 Bench Road"),
        )
        placed.append(order.pk)
    workers = [common.spawn("consume", "balance.commands")]
    workers += [common.spawn("consume", "billing.order_placed") for _ in range(billing_workers)]
    relay = None
    try:
        common.wait_for(lambda: _consumers("billing.order_placed") == billing_workers, 60, "the billing workers")
        relay = common.spawn("relay_outbox")
        pending = Order.objects.filter(pk__in=placed, status="pending_payment")
        common.wait_for(lambda: not pending.exists(), 600, "every order to be settled", interval=0.2)
    finally:
        for process in [*workers, *([relay] if relay else [])]:
            common.stop(process)
    first = OutboxMessage.objects.filter(type="order.placed", aggregate__in=[f"order:{pk}" for pk in placed]).aggregate(
        first=Min("sent_at")
    )["first"]
    last = OrderEvent.objects.filter(order_id__in=placed, status="paid").aggregate(last=Max("at"))["last"]
    paid = Order.objects.filter(pk__in=placed, status="paid").count()
    seconds = (last - first).total_seconds()
    return {
        "orders": orders,
        "paid": paid,
        "billing_workers": billing_workers,
        "seconds": round(seconds, 2),
        "orders_per_second": round(paid / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--billing-workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--rpc-calls", type=int, default=2000)
    args = parser.parse_args()
    common.prepare()
    from bus.topology import declare_topology

    declare_topology()
    figures: dict[str, Any] = {"debit_rpc": rpc_round_trip(args.rpc_calls)}
    for count in args.billing_workers:
        figures[f"placed_to_paid_{count}_billing"] = orders_to_paid(args.orders, count)
    path = common.save("billing", figures, {"orders": args.orders, "rpc_calls": args.rpc_calls})
    rpc = figures["debit_rpc"]
    rows = [("wallet RPC round trip", f"p50 {rpc['p50_ms']} ms, p99 {rpc['p99_ms']} ms")]
    for count in args.billing_workers:
        f = figures[f"placed_to_paid_{count}_billing"]
        rows.append((f"order.placed -> paid, {count} billing worker(s)", f"{f['orders_per_second']:,} orders/s"))
    print("Billing benchmark\n" + common.table(rows) + f"\n  results: {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
