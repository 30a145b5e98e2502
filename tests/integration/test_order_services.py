"""Placing and moving orders through the services, on the real MariaDB."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
from django.db import connection

from ordering.exceptions import (
    IdempotencyConflict,
    InvalidOrder,
    InvalidTransition,
    ItemUnavailable,
    NotFound,
    OutOfStock,
    PermissionDenied,
    RestaurantClosed,
)
from ordering.models import MenuItem, Order, OrderEvent, OrderLine
from ordering.services import OrderRequest, order_cancel, order_place, order_transition, order_transition_by_staff
from ordering.services.stock import stock_release, stock_reserve
from ordering.status import Actor, OrderStatus
from tests.factories import MenuItemFactory, RestaurantFactory, StaffMembershipFactory, UserFactory


def place(customer, restaurant, items, key=None, address="1 Test Lane", notes=""):
    request = OrderRequest(restaurant_id=restaurant.pk, items=items, delivery_address=address, notes=notes)
    return order_place(customer=customer, request=request, idempotency_key=key)


def counts():
    return Order.objects.count(), OrderLine.objects.count(), OrderEvent.objects.count()


def test_total_is_computed_from_current_prices(customer, restaurant, menu):
    # given a menu; when the customer orders 2 pizzas and 1 pasta
    order, created = place(customer, restaurant, [(menu["pizza"].pk, 2), (menu["pasta"].pk, 1)])
    # then the total and line prices come from the menu
    assert created
    assert order.total == Decimal("32.25")
    assert order.status == "pending_payment" and order.version == 1
    lines = {line.name: (line.quantity, line.unit_price) for line in order.lines.all()}
    assert lines == {"Pizza": (2, Decimal("11.50")), "Pasta": (1, Decimal("9.25"))}
    assert list(order.events.values_list("status", "version")) == [("pending_payment", 1)]


def test_prices_are_copied_so_a_later_price_change_leaves_the_order_alone(customer, restaurant, menu):
    order, _ = place(customer, restaurant, [(menu["pizza"].pk, 1)])
    MenuItem.objects.filter(pk=menu["pizza"].pk).update(price=Decimal("99.00"), name="Renamed")
    line = Order.objects.get(pk=order.pk).lines.get()
    assert (line.name, line.unit_price) == ("Pizza", Decimal("11.50"))


def test_repeated_item_lines_are_merged(customer, restaurant, menu):
    order, _ = place(customer, restaurant, [(menu["pizza"].pk, 1), (menu["pizza"].pk, 2)])
    assert list(order.lines.values_list("quantity", flat=True)) == [3]
    assert order.total == Decimal("34.50")


@pytest.mark.parametrize(
    "items,code",
    [
        ([], "empty_order"),
        ([("pizza", 0)], "invalid_quantity"),
        ([("pizza", -1)], "invalid_quantity"),
        ([("pizza", 51)], "invalid_quantity"),
        ([("pizza", 10**30)], "invalid_quantity"),
        ([("pizza", 1.5)], "invalid_quantity"),
        ([("pizza", True)], "invalid_quantity"),
        ([(987654321, 1)], "unknown_menu_item"),
    ],
)
def test_bad_orders_are_refused_and_write_nothing(customer, restaurant, menu, items, code):
    before = counts()
    items = [(menu[ref].pk if isinstance(ref, str) else ref, qty) for ref, qty in items]
    with pytest.raises(InvalidOrder) as error:
        place(customer, restaurant, items)
    assert error.value.code == code
    assert counts() == before


def test_dish_of_another_restaurant_is_refused(customer, restaurant, menu):
    stranger = MenuItemFactory()
    with pytest.raises(InvalidOrder) as error:
        place(customer, restaurant, [(menu["pizza"].pk, 1), (stranger.pk, 1)])
    assert error.value.code == "unknown_menu_item"
    assert Order.objects.count() == 0


def test_unknown_restaurant_closed_restaurant_and_unavailable_dish(customer, menu):
    with pytest.raises(InvalidOrder, match="no such restaurant"):
        order_place(customer=customer, request=OrderRequest(restaurant_id=10**9, items=[(1, 1)], delivery_address="x"))
    closed = RestaurantFactory(is_open=False)
    dish = MenuItemFactory(category__restaurant=closed)
    with pytest.raises(RestaurantClosed):
        place(customer, closed, [(dish.pk, 1)])
    MenuItem.objects.filter(pk=menu["pasta"].pk).update(is_available=False)
    with pytest.raises(ItemUnavailable):
        place(customer, menu["pasta"].restaurant, [(menu["pasta"].pk, 1)])
    assert Order.objects.count() == 0


def test_missing_address_is_refused(customer, restaurant, menu):
    with pytest.raises(InvalidOrder) as error:
        place(customer, restaurant, [(menu["pizza"].pk, 1)], address="   ")
    assert error.value.code == "missing_address"


def test_stock_is_reserved_and_an_order_that_would_oversell_is_refused_whole(customer, restaurant, menu):
    soup = menu["soup"]  # daily stock 5
    place(customer, restaurant, [(soup.pk, 3)])
    assert MenuItem.objects.get(pk=soup.pk).remaining_today == 2
    before = counts()
    with pytest.raises(OutOfStock):
        place(customer, restaurant, [(menu["pizza"].pk, 1), (soup.pk, 3)])
    assert counts() == before
    assert MenuItem.objects.get(pk=soup.pk).remaining_today == 2


def test_stock_starts_again_from_the_daily_limit_on_a_new_day(restaurant, menu):
    soup = menu["soup"]
    yesterday, today = datetime.date(2026, 1, 1), datetime.date(2026, 1, 2)
    assert stock_reserve(menu_item_id=soup.pk, quantity=5, day=yesterday)
    assert not stock_reserve(menu_item_id=soup.pk, quantity=1, day=yesterday)
    assert stock_reserve(menu_item_id=soup.pk, quantity=4, day=today)
    soup.refresh_from_db()
    assert (soup.stock_date, soup.stock_remaining) == (today, 1)
    # yesterday's order failing gives nothing back to today
    stock_release(menu_item_id=soup.pk, quantity=5, day=yesterday)
    soup.refresh_from_db()
    assert soup.stock_remaining == 1


def test_items_without_a_limit_never_run_out(restaurant, menu):
    assert stock_reserve(menu_item_id=menu["pizza"].pk, quantity=10_000, day=datetime.date(2026, 1, 1))


def test_cancelling_releases_stock_and_writes_the_timeline(customer, restaurant, menu):
    soup = menu["soup"]
    order, _ = place(customer, restaurant, [(soup.pk, 4)])
    cancelled = order_cancel(order_id=order.pk, customer=customer)
    assert (cancelled.status, cancelled.version) == ("cancelled", 2)
    assert MenuItem.objects.get(pk=soup.pk).remaining_today == 5
    steps = list(OrderEvent.objects.filter(order=order).values_list("version", "from_status", "status", "actor_kind"))
    assert steps == [(1, "", "pending_payment", "customer"), (2, "pending_payment", "cancelled", "customer")]
    with pytest.raises(InvalidTransition):
        order_cancel(order_id=order.pk, customer=customer)
    assert MenuItem.objects.get(pk=soup.pk).remaining_today == 5


def test_another_customers_order_cannot_be_cancelled(customer, other_customer, restaurant, menu):
    order, _ = place(customer, restaurant, [(menu["pizza"].pk, 1)])
    with pytest.raises(NotFound):
        order_cancel(order_id=order.pk, customer=other_customer)
    assert Order.objects.get(pk=order.pk).status == "pending_payment"


def test_kitchen_moves_its_own_orders_along_the_contract_path(customer, restaurant, menu):
    order, _ = place(customer, restaurant, [(menu["pizza"].pk, 1)])
    order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
    cook = StaffMembershipFactory(restaurant=restaurant).user
    stranger = StaffMembershipFactory().user
    with pytest.raises(PermissionDenied):
        order_transition_by_staff(order_id=order.pk, user=stranger, to="accepted")
    with pytest.raises(InvalidTransition):
        order_transition_by_staff(order_id=order.pk, user=cook, to="ready")
    for status in ["accepted", "preparing", "ready", "out_for_delivery", "delivered"]:
        order = order_transition_by_staff(order_id=order.pk, user=cook, to=status)
    assert (order.status, order.version) == ("delivered", 7)
    assert list(order.events.values_list("version", flat=True)) == [1, 2, 3, 4, 5, 6, 7]


def test_idempotency_key_returns_the_first_order_and_refuses_another_body(customer, restaurant, menu):
    first, created = place(customer, restaurant, [(menu["pizza"].pk, 1)], key="k-1")
    again, created_again = place(customer, restaurant, [(menu["pizza"].pk, 1)], key="k-1")
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        place(customer, restaurant, [(menu["pizza"].pk, 2)], key="k-1")
    # keys belong to one customer: another customer may use the same string
    other, created_other = place(UserFactory(), restaurant, [(menu["pizza"].pk, 1)], key="k-1")
    assert created_other and other.pk != first.pk
    assert Order.objects.count() == 2


def run_concurrently(count, work):
    """Run ``work(i)`` in ``count`` threads released together; return their results or errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def runner(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_never_oversell():
    # given a dish with 7 left today and 12 customers each wanting 1, racing
    restaurant = RestaurantFactory()
    dish = MenuItemFactory(category__restaurant=restaurant, daily_stock=7, price=Decimal("5.00"))
    customers = [UserFactory() for _ in range(12)]
    results = run_concurrently(12, lambda i: place(customers[i], restaurant, [(dish.pk, 1)]))
    # then exactly 7 orders exist and the stock is exactly zero
    placed = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, OutOfStock)]
    assert (len(placed), len(refused)) == (7, 5), results
    assert Order.objects.count() == 7
    assert MenuItem.objects.get(pk=dish.pk).remaining_today == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_make_one_order():
    restaurant = RestaurantFactory()
    dish = MenuItemFactory(category__restaurant=restaurant, daily_stock=10)
    customer = UserFactory()
    results = run_concurrently(6, lambda i: place(customer, restaurant, [(dish.pk, 2)], key="same-key"))
    assert all(isinstance(r, tuple) for r in results), results
    assert len({order.pk for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Order.objects.count() == 1
    assert MenuItem.objects.get(pk=dish.pk).remaining_today == 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_of_one_order_apply_one_at_a_time():
    restaurant = RestaurantFactory()
    dish = MenuItemFactory(category__restaurant=restaurant)
    customer = UserFactory()
    order, _ = place(customer, restaurant, [(dish.pk, 1)])
    # the customer cancels while billing marks it paid: exactly one of them wins first, and
    # whichever wins, the versions stay gapless
    outcomes = run_concurrently(
        2,
        lambda i: (
            order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
            if i == 0
            else order_cancel(order_id=order.pk, customer=customer)
        ),
    )
    versions = list(OrderEvent.objects.filter(order=order).values_list("version", flat=True))
    assert versions == list(range(1, len(versions) + 1))
    assert Order.objects.get(pk=order.pk).version == versions[-1]
    assert any(isinstance(o, Order) for o in outcomes)


def test_order_events_carry_the_correlation_id_of_the_work_that_caused_them(customer, restaurant, menu):
    from bus.correlation import correlation_context

    with correlation_context("http-req-0001"):
        order, _ = place(customer, restaurant, [(menu["pizza"].pk, 1)])
    with correlation_context("http-req-0002"):
        order_cancel(order_id=order.pk, customer=customer)
    assert list(order.events.values_list("correlation_id", flat=True)) == ["http-req-0001", "http-req-0002"]


def test_placing_and_moving_an_order_writes_its_events_to_the_outbox_in_the_same_transaction(
    customer, restaurant, menu
):
    from bus.models import OutboxMessage

    order, _ = place(customer, restaurant, [(menu["pizza"].pk, 2)])
    order_cancel(order_id=order.pk, customer=customer)
    rows = list(OutboxMessage.objects.filter(aggregate=f"order:{order.pk}").order_by("id"))
    assert [(r.type, r.exchange, r.routing_key) for r in rows] == [
        ("order.placed", "billing", "order.placed"),
        ("order.status_changed", "notification", "order.status.cancelled"),
    ]
    import json

    placed, cancelled = (json.loads(r.body)["payload"] for r in rows)
    assert placed["total"] == "23.00" and placed["version"] == 1
    assert (cancelled["status"], cancelled["from_status"], cancelled["version"]) == ("cancelled", "pending_payment", 2)


def test_a_refused_order_leaves_no_event(customer, restaurant, menu):
    from bus.models import OutboxMessage

    with pytest.raises(OutOfStock):
        place(customer, restaurant, [(menu["soup"].pk, 6)])
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    "price,quantity",
    [
        (Decimal("0.00"), 1),  # a free dish alone: 0.00 can never be charged
        (Decimal("0.00"), 50),
        (Decimal("400.01"), 25),  # 10,000.25: over the wallet's limit for one movement
    ],
)
def test_a_total_the_wallet_can_never_pay_is_refused_and_writes_nothing(customer, restaurant, price, quantity):
    from billing.services.wallets import MAX_MOVEMENT
    from bus.models import OutboxMessage

    # given a dish whose total for this quantity is 0.00 or over the wallet's limit of one movement
    dish = MenuItemFactory(category__restaurant=restaurant, price=price, daily_stock=100)
    before = counts()
    # when
    with pytest.raises(InvalidOrder) as error:
        place(customer, restaurant, [(dish.pk, quantity)])
    # then: refused as bad input, nothing written, no stock taken
    assert error.value.code == "total_out_of_range"
    assert f"{MAX_MOVEMENT:,.2f}" in error.value.message
    assert counts() == before
    assert not OutboxMessage.objects.exists()
    assert MenuItem.objects.get(pk=dish.pk).remaining_today == 100


def test_a_total_of_exactly_the_wallet_limit_is_placed(customer, restaurant):
    dish = MenuItemFactory(category__restaurant=restaurant, price=Decimal("400.00"))
    order, created = place(customer, restaurant, [(dish.pk, 25)])
    assert created and order.total == Decimal("10000.00")
