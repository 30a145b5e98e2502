"""Live analytics on the real broker, database and Redis: a scripted burst of orders across two
restaurants goes through the real relay, balance, billing and analytics workers, and the
dashboard's figures equal what the ordering tables (Order, OrderLine, OrderEvent) say,
computed here independently; replaying every event again, in any order, changes nothing;
open dashboards get the figures pushed, throttled, and only their own restaurant's."""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from analytics.models import DishLine, OrderFact
from analytics.selectors import Figures, dashboard_figures
from bus.catalog import EVENTS
from bus.envelope import Envelope
from bus.handlers import Message
from bus.models import OutboxMessage, ProcessedMessage
from consumers.analytics import analytics_events, pusher, record_batch
from ordering.models import Order, OrderEvent, OrderLine
from ordering.services import api_token_issue, order_cancel, order_recall, order_transition_by_staff
from tests.factories import (
    MenuCategoryFactory,
    MenuItemFactory,
    OrderFactory,
    RestaurantFactory,
    StaffMembershipFactory,
    UserFactory,
    WalletFactory,
)
from tests.integration.sockets import ws
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ANALYTICS_TYPES = ["order.placed", "order.status_changed", "payment.succeeded", "payment.failed", "payment.refunded"]
EXITS = {"payment_failed", "rejected", "cancelled"}


# --- the expectation, from the ordering tables only ----------------------------------------------


def expected_figures(restaurant_ids: list[int], now: datetime.datetime) -> dict[str, Any]:
    """What the dashboard must show for these restaurants at ``now``, read from Order, OrderLine
    and OrderEvent (not from anything analytics wrote), by the selectors' definitions."""
    local = timezone.localtime(now)
    start = timezone.make_aware(datetime.datetime.combine(local.date(), datetime.time()))
    end = timezone.make_aware(datetime.datetime.combine(local.date() + datetime.timedelta(days=1), datetime.time()))

    def today(moment: datetime.datetime | None) -> bool:
        return moment is not None and start <= moment < end

    orders = {o.pk: o for o in Order.objects.filter(restaurant_id__in=restaurant_ids)}
    steps: dict[int, list[OrderEvent]] = defaultdict(list)
    for event in OrderEvent.objects.filter(order_id__in=orders).order_by("version"):
        steps[event.order_id].append(event)
    paid_at, ready_at, exit_of = {}, {}, {}
    for order_id, events in steps.items():
        ready_version = unready_version = 0
        for e in events:
            if e.status == "paid":
                paid_at[order_id] = e.at
            if e.status == "ready" and e.from_status == "preparing":
                ready_version, ready_at[order_id] = e.version, e.at
            if e.status == "preparing" and e.from_status == "ready":
                unready_version = e.version
            if e.status in EXITS:
                exit_of[order_id] = e
        if ready_version <= unready_version:
            ready_at.pop(order_id, None)

    paid_today = [i for i in orders if today(paid_at.get(i))]
    refunded = [i for i, e in exit_of.items() if e.from_status == "paid" and today(e.at)]
    ready = [i for i in ready_at if today(ready_at[i]) and i in paid_at]
    micros = sum((ready_at[i] - paid_at[i]) // datetime.timedelta(microseconds=1) for i in ready)
    gross = sum((orders[i].total for i in paid_today), Decimal("0.00"))
    refunds = sum((orders[i].total for i in refunded), Decimal("0.00"))

    minute0 = now.replace(second=0, microsecond=0) - datetime.timedelta(minutes=59)
    per_minute = [0] * 60
    for o in orders.values():
        index = (o.created_at - minute0) // datetime.timedelta(minutes=1)
        if 0 <= index < 60:
            per_minute[index] += 1

    sold: dict[int, dict[str, Any]] = {}
    for line in OrderLine.objects.filter(order_id__in=[i for i in paid_today if i not in exit_of]).order_by("order_id"):
        dish = sold.setdefault(line.menu_item_id, {"quantity": 0, "amount": Decimal("0.00")})
        dish["quantity"] += line.quantity
        dish["amount"] += line.quantity * line.unit_price
        dish["name"] = line.name  # the latest order's name
    top = sorted(sold.items(), key=lambda item: (-item[1]["quantity"], item[0]))[:5]

    def ended(status: str) -> int:
        return sum(1 for e in exit_of.values() if e.status == status and today(e.at))

    return {
        "orders_today": sum(1 for o in orders.values() if today(o.created_at)),
        "paid_orders_today": len(paid_today),
        "revenue_gross": gross,
        "refunds_count": len(refunded),
        "refunds_amount": refunds,
        "revenue_net": gross - refunds,
        "ready_today": len(ready),
        "avg_paid_to_ready_seconds": int(
            (Decimal(micros) / len(ready) / 10**6).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
        if ready
        else None,
        "payment_failures": ended("payment_failed"),
        "rejections": ended("rejected"),
        "cancellations": ended("cancelled"),
        "top_dishes": [(item_id, d["name"], d["quantity"], d["amount"]) for item_id, d in top],
        "per_minute": per_minute,
        "current_rate": sum(1 for o in orders.values() if now - datetime.timedelta(seconds=60) < o.created_at <= now),
    }


def shown(figures: Figures) -> dict[str, Any]:
    """The figures in the expectation's terms."""
    keys = [
        "orders_today",
        "paid_orders_today",
        "revenue_gross",
        "refunds_count",
        "refunds_amount",
        "revenue_net",
        "ready_today",
        "avg_paid_to_ready_seconds",
        "payment_failures",
        "rejections",
        "cancellations",
        "per_minute",
        "current_rate",
    ]
    data = {key: getattr(figures, key) for key in keys}
    data["top_dishes"] = [(d.menu_item_id, d.name, d.quantity, d.amount) for d in figures.top_dishes]
    return data


# --- the scene ----------------------------------------------------------------------------------


def kitchens() -> dict[str, Any]:
    """Two restaurants with three dishes each, a cook each, rich customers and a poor one."""
    scene: dict[str, Any] = {"restaurants": [], "dishes": {}, "cooks": {}}
    for name, prices in (("Trattoria", ("11.50", "9.25", "6.10")), ("Noodle Bar", ("12.00", "8.40", "7.75"))):
        restaurant = RestaurantFactory(name=name)
        category = MenuCategoryFactory(restaurant=restaurant, name="Mains")
        scene["restaurants"].append(restaurant)
        scene["dishes"][restaurant.pk] = [
            MenuItemFactory(category=category, name=f"{name} dish {i}", price=Decimal(p)) for i, p in enumerate(prices)
        ]
        scene["cooks"][restaurant.pk] = StaffMembershipFactory(restaurant=restaurant).user
    scene["rich"] = [UserFactory(), UserFactory()]
    scene["poor"] = UserFactory()
    for user in scene["rich"]:
        WalletFactory(user=user, balance="2000.00")
    # Less than any dish costs: every order of theirs fails to pay.
    WalletFactory(user=scene["poor"], balance="5.00")
    return scene


def place(scene: dict[str, Any], index: int) -> Order:
    restaurant = scene["restaurants"][index % 2]
    dishes = scene["dishes"][restaurant.pk]
    customer = scene["poor"] if index % 7 == 3 else scene["rich"][index % 2]
    items = [(dishes[index % 3], 1 + index % 3)]
    if index % 4 == 0:
        items.append((dishes[(index + 1) % 3], 1))
    return OrderFactory(customer=customer, items=items)


def settled(order_ids: list[int]) -> bool:
    return not Order.objects.filter(pk__in=order_ids, status="pending_payment").exists()


def run_the_kitchens(scene: dict[str, Any], order_ids: list[int]) -> None:
    """Move the paid orders along: some rejected, some cancelled, some taken to ready (one with
    a mistaken ready recalled), some delivered, some left waiting."""
    paid = list(Order.objects.filter(pk__in=order_ids, status="paid").order_by("pk"))
    for j, order in enumerate(paid):
        cook = scene["cooks"][order.restaurant_id]
        kind = j % 6
        if kind == 0:
            order_transition_by_staff(order_id=order.pk, user=cook, to="rejected", reason="Out of dough")
        elif kind == 1:
            order_cancel(order_id=order.pk, customer=order.customer)
        elif kind == 2:
            continue  # still waiting for the kitchen
        else:
            for to in ("accepted", "preparing", "ready"):
                order_transition_by_staff(order_id=order.pk, user=cook, to=to)
            if kind == 4:
                order_recall(order_id=order.pk, user=cook)  # ready by mistake: back to preparing
                order_transition_by_staff(order_id=order.pk, user=cook, to="ready")
            if kind == 5:
                order_transition_by_staff(order_id=order.pk, user=cook, to="delivered")


def refunds_done(order_ids: list[int]) -> bool:
    owed = Order.objects.filter(pk__in=order_ids, status__in=["rejected", "cancelled"]).count()
    return (
        ProcessedMessage.objects.filter(consumer="analytics.events").count() > 0
        and owed == OutboxMessage.objects.filter(type="payment.refunded").count()
    )


def burst(scene, count: int) -> list[int]:
    """Place ``count`` orders at once, wait for each to be charged (or to fail), let the
    kitchens work through them and wait for the refunds: the ids."""
    order_ids = [place(scene, index).pk for index in range(count)]
    wait_until(lambda: settled(order_ids), what="every order to be charged or to fail")
    run_the_kitchens(scene, order_ids)
    wait_until(lambda: refunds_done(order_ids), what="the refunds to be written")
    return order_ids


@pytest.fixture
def workers(relay, payment_workers, run_consumers, worker_threads):
    run_consumers(analytics_events)
    yield
    worker_threads.stop()
    assert pusher.flush(timeout=10), "the dashboard pusher did not finish"


def test_a_burst_of_orders_gives_the_figures_the_ordering_tables_give(workers):
    # given two restaurants, rich customers and one whose wallet is short
    scene = kitchens()
    ids = [r.pk for r in scene["restaurants"]]

    # when 30 orders are placed at once, paid (or not), and the kitchens work through them
    burst(scene, 30)
    now = timezone.now()

    # then every figure, for each restaurant and for all, equals the ordering tables' own
    def matches() -> bool:
        return all(
            shown(dashboard_figures(restaurant_id=scope, now=now)) == expected_figures(which, now)
            for scope, which in ((ids[0], ids[:1]), (ids[1], ids[1:]), (None, ids))
        )

    wait_until(matches, timeout=20, interval=0.1, what="the analytics figures to catch up")
    for scope, which in ((ids[0], ids[:1]), (ids[1], ids[1:]), (None, ids)):
        assert shown(dashboard_figures(restaurant_id=scope, now=now)) == expected_figures(which, now)

    # and the scene really had every kind of figure in it
    everything = expected_figures(ids, now)
    assert everything["orders_today"] == 30 and sum(everything["per_minute"]) == 30
    assert everything["payment_failures"] == 4 and everything["rejections"] >= 3 and everything["cancellations"] >= 3
    assert everything["ready_today"] >= 6 and everything["avg_paid_to_ready_seconds"] is not None
    assert len(everything["top_dishes"]) == 5 and everything["refunds_amount"] > 0
    # the all-restaurants figures list both, by name, adding up
    rows = dashboard_figures(restaurant_id=None, now=now).restaurants
    assert [r.name for r in rows] == ["Noodle Bar", "Trattoria"]
    for row in rows:
        alone = expected_figures([row.restaurant_id], now)
        assert (row.orders_today, row.revenue_net, row.payment_failures) == (
            alone["orders_today"],
            alone["revenue_net"],
            alone["payment_failures"],
        )
    assert sum(r.revenue_net for r in rows) == everything["revenue_net"]

    # when every event is delivered again (new message ids, so the runner's dedupe lets them
    # through), through the broker
    before = OutboxMessage.objects.filter(type__in=ANALYTICS_TYPES).order_by("id")
    copies = [copy_of(message) for message in before]
    OutboxMessage.objects.bulk_create(copies)
    wait_until(
        lambda: (
            ProcessedMessage.objects.filter(
                consumer="analytics.events", message_id__in=[c.message_id for c in copies]
            ).count()
            == len(copies)
        ),
        what="analytics to take every copy",
    )
    # then nothing changed
    for scope, which in ((ids[0], ids[:1]), (ids[1], ids[1:]), (None, ids)):
        assert shown(dashboard_figures(restaurant_id=scope, now=now)) == expected_figures(which, now)


def copy_of(message: OutboxMessage) -> OutboxMessage:
    envelope = Envelope.from_json(message.body)
    again = Envelope(
        type=envelope.type,
        version=envelope.version,
        payload=envelope.payload,
        correlation_id=envelope.correlation_id,
        occurred_at=envelope.occurred_at,
    )
    return OutboxMessage(
        message_id=again.message_id,
        type=message.type,
        exchange=message.exchange,
        routing_key=message.routing_key,
        aggregate=message.aggregate,
        correlation_id=message.correlation_id,
        body=again.to_json().decode(),
    )


def as_message(row: OutboxMessage) -> Message:
    envelope = Envelope.from_json(row.body)
    event = EVENTS[envelope.type]
    return Message(
        envelope=envelope,
        payload=event.schema.model_validate(envelope.payload),
        event=event,
        attempt=1,
        redelivered=False,
        exchange=row.exchange,
        routing_key=row.routing_key,
    )


def test_the_events_in_any_order_rebuild_the_same_figures(workers):
    # given a burst already folded in by the analytics worker
    scene = kitchens()
    ids = [r.pk for r in scene["restaurants"]]
    burst(scene, 18)
    now = timezone.now()
    expected = {scope: expected_figures(which, now) for scope, which in ((ids[0], ids[:1]), (None, ids))}
    wait_until(
        lambda: all(shown(dashboard_figures(restaurant_id=s, now=now)) == e for s, e in expected.items()),
        what="the analytics figures to catch up",
    )

    # when the tables are emptied and every event is handled again, shuffled, in batches, twice
    messages = [as_message(row) for row in OutboxMessage.objects.filter(type__in=ANALYTICS_TYPES)]
    with transaction.atomic():
        DishLine.objects.all().delete()
        OrderFact.objects.all().delete()
    rng = random.Random(6)
    for _ in range(2):
        rng.shuffle(messages)
        for start in range(0, len(messages), 25):
            with transaction.atomic():
                record_batch(messages[start : start + 25])

    # then every status change that overtook its order.placed and every duplicate changed nothing
    for scope, figures in expected.items():
        assert shown(dashboard_figures(restaurant_id=scope, now=now)) == figures


# --- pushes to open dashboards ------------------------------------------------------------------


def test_open_dashboards_get_their_figures_pushed_throttled_and_only_their_own(workers, settings):
    # given the dashboards of both restaurants and the all-restaurants one are open
    settings.ANALYTICS_PUSH_INTERVAL = 0.4
    scene = kitchens()
    first, second = scene["restaurants"]
    admin = UserFactory(is_staff=True, is_superuser=True)
    tokens = {
        name: api_token_issue(user=user)
        for name, user in (("first", scene["cooks"][first.pk]), ("second", scene["cooks"][second.pk]), ("admin", admin))
    }

    async def scenario() -> None:
        sockets = {
            "first": ws(f"/ws/dashboard/{first.pk}/", tokens["first"]),
            "second": ws(f"/ws/dashboard/{second.pk}/", tokens["second"]),
            "all": ws("/ws/dashboard/", tokens["admin"]),
        }
        try:
            for socket in sockets.values():
                assert (await socket.connect())[0]
                snapshot = await socket.receive_json_from(timeout=5)
                assert snapshot["type"] == "dashboard.figures" and snapshot["figures"]["orders_today"] == 0

            # when twelve orders are placed at the first restaurant, one after the other
            await asyncio.to_thread(lambda: [place_at(scene, first, i) for i in range(12)])

            # then its dashboard and the all-restaurants one reach twelve orders by themselves
            frames: dict[str, list[dict[str, Any]]] = {"first": [], "all": []}
            for name, socket in (("first", sockets["first"]), ("all", sockets["all"])):
                deadline = time.monotonic() + 20
                while not frames[name] or frames[name][-1]["paid_orders_today"] < 12:
                    assert time.monotonic() < deadline, f"{name}: {frames[name][-1:]}"
                    frame = await socket.receive_json_from(timeout=20)
                    assert frame["type"] == "dashboard.figures"
                    frames[name].append(frame["figures"])
            last = frames["first"][-1]
            assert (last["orders_today"], last["revenue_gross"]) == (12, str(Decimal("11.50") * 12))
            assert (
                frames["all"][-1]["restaurants"][
                    [r["restaurant_id"] for r in frames["all"][-1]["restaurants"]].index(first.pk)
                ]["paid_orders_today"]
                == 12
            )
            # at most one push per interval per group: a burst costs a few recomputes, not one each
            for name, pushed in frames.items():
                times = [frame["as_of_us"] for frame in pushed]
                assert all(b - a >= 0.3 * 1_000_000 for a, b in zip(times, times[1:])), (name, times)
                assert len(pushed) < 12, (name, len(pushed))
            # and the other restaurant's dashboard was sent nothing
            assert await sockets["second"].receive_nothing(timeout=0.8)
            # a dashboard that asks again gets the figures as they are now
            await sockets["second"].send_json_to({"type": "sync"})
            assert (await sockets["second"].receive_json_from(timeout=5))["figures"]["orders_today"] == 0
        finally:
            for socket in sockets.values():
                await socket.disconnect()

    async_to_sync(scenario)()


def place_at(scene: dict[str, Any], restaurant, index: int) -> Order:  # type: ignore[no-untyped-def]
    return OrderFactory(customer=scene["rich"][index % 2], dish=scene["dishes"][restaurant.pk][0])
