"""The order page's estimated ready time, from the restaurant's measured preparation times."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ordering import selectors, services
from ordering.models import Order, OrderEvent, Restaurant
from ordering.status import Actor, OrderStatus
from tests.factories import OrderFactory, OrderRowFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

S = OrderStatus
TO_DELIVERED = [S.PENDING_PAYMENT, S.PAID, S.ACCEPTED, S.PREPARING, S.READY, S.DELIVERED]


def now() -> datetime.datetime:
    return timezone.now().replace(microsecond=0)


def past_order(
    restaurant: Restaurant,
    customer,
    *,
    prep_minutes: float,
    ready_ago: datetime.timedelta = datetime.timedelta(hours=1),
    until: OrderStatus = S.DELIVERED,
) -> Order:
    """An order the kitchen accepted and readied ``prep_minutes`` apart, ``ready_ago`` ago,
    with its events written directly (thousands of service calls would test nothing more)."""
    ready_at = now() - ready_ago
    accepted_at = ready_at - datetime.timedelta(minutes=prep_minutes)
    path = TO_DELIVERED[: TO_DELIVERED.index(until) + 1]
    minute = datetime.timedelta(minutes=1)
    times = {
        S.PENDING_PAYMENT: accepted_at - 2 * minute,
        S.PAID: accepted_at - minute,
        S.ACCEPTED: accepted_at,
        S.PREPARING: accepted_at + minute,
        S.READY: ready_at,
        S.DELIVERED: ready_at + 15 * minute,
    }
    order = OrderRowFactory(
        customer=customer,
        restaurant=restaurant,
        status=until,
        version=len(path),
        total=Decimal("10.00"),
        delivery_address="1 Past Lane",
        stock_date=times[S.PENDING_PAYMENT].date(),
        created_at=times[S.PENDING_PAYMENT],
    )
    OrderEvent.objects.bulk_create(
        OrderEvent(order=order, version=version, status=status, actor_kind=Actor.SYSTEM, at=times[status])
        for version, status in enumerate(path, start=1)
    )
    return order


def advance(order: Order, *steps: tuple[str, Actor]) -> None:
    for to, actor in steps:
        services.order_transition(order_id=order.pk, to=to, actor_kind=actor)


PAID = [("paid", Actor.SYSTEM)]
ACCEPTED = PAID + [("accepted", Actor.STAFF)]
PREPARING = ACCEPTED + [("preparing", Actor.STAFF)]
READY = PREPARING + [("ready", Actor.STAFF)]


def accepted_ago(order: Order, minutes: int) -> datetime.datetime:
    """Move the order's acceptance ``minutes`` into the past; return its new time."""
    at = now() - datetime.timedelta(minutes=minutes)
    OrderEvent.objects.filter(order=order, status=S.ACCEPTED).update(at=at)
    return at


def page(client, customer, order: Order) -> str:
    client.force_login(customer)
    response = client.get(reverse("order_detail", args=[order.pk]))
    assert response.status_code == 200
    return response.content.decode()


# The measured preparation time ---------------------------------------------------------


def test_the_prep_time_is_the_median_of_the_restaurants_own_recent_ready_orders(restaurant, other_customer):
    # given six orders of this restaurant readied in 10..40 minutes (median 15)
    for prep in [10, 12, 14, 16, 18, 40]:
        past_order(restaurant, other_customer, prep_minutes=prep)
    # and orders that must not count: too old, another restaurant's, not ready yet
    past_order(restaurant, other_customer, prep_minutes=90, ready_ago=datetime.timedelta(days=15))
    past_order(RestaurantFactory(), other_customer, prep_minutes=90)
    past_order(restaurant, other_customer, prep_minutes=90, until=S.PREPARING)
    # when
    prep = selectors.restaurant_prep_time(restaurant=restaurant)
    # then
    assert (prep.minutes, prep.samples, prep.measured) == (15, 6, True)


def test_only_the_most_recent_fifty_ready_orders_count(restaurant, other_customer):
    # given 50 recent quick orders and 10 slow ones just before them
    for _ in range(50):
        past_order(restaurant, other_customer, prep_minutes=10, ready_ago=datetime.timedelta(hours=1))
    for _ in range(10):
        past_order(restaurant, other_customer, prep_minutes=60, ready_ago=datetime.timedelta(hours=5))
    # when
    prep = selectors.restaurant_prep_time(restaurant=restaurant)
    # then
    assert (prep.minutes, prep.samples) == (10, selectors.PREP_SAMPLE_SIZE)


def test_orders_that_are_out_for_delivery_or_just_ready_count_too(restaurant, other_customer):
    for until in [S.READY, S.READY, S.READY, S.DELIVERED, S.DELIVERED]:
        past_order(restaurant, other_customer, prep_minutes=12, until=until)
    assert selectors.restaurant_prep_time(restaurant=restaurant).samples == 5


# On the order page ---------------------------------------------------------------------


def test_an_order_in_the_kitchen_shows_acceptance_plus_the_measured_time(
    client, customer, other_customer, restaurant, menu
):
    # given a restaurant whose last six orders took a median of 15 minutes
    for prep in [10, 12, 14, 16, 18, 40]:
        past_order(restaurant, other_customer, prep_minutes=prep)
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *PREPARING)
    accepted_at = accepted_ago(order, 5)
    # when
    html = page(client, customer, order)
    # then it is expected 15 minutes after acceptance, 10 minutes from now
    expected = timezone.localtime(accepted_at + datetime.timedelta(minutes=15))
    assert 'data-eta="expected" data-eta-minutes="15" data-eta-source="measured"' in html
    assert f'Expected ready around <time datetime="{expected.isoformat()}">{expected:%H:%M}</time>' in html
    assert "Measured from the restaurant&#x27;s last 6 orders: about 15 min from acceptance." in html
    # and the timeline keeps the events' own times
    accepted_local = timezone.localtime(accepted_at)
    assert f'<time datetime="{accepted_local.isoformat()}">{accepted_local:%-d %b, %H:%M}</time>' in html


def test_too_few_measured_orders_fall_back_to_the_restaurants_own_estimate(
    client, customer, other_customer, restaurant, menu
):
    # given four measured orders (too few) and a restaurant that says 25 minutes
    Restaurant.objects.filter(pk=restaurant.pk).update(prep_time_minutes=25)
    for prep in [5, 5, 5, 5]:
        past_order(restaurant, other_customer, prep_minutes=prep)
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *PAID)
    # when
    html = page(client, customer, order)
    # then
    assert 'data-eta="after-accept" data-eta-minutes="25" data-eta-source="restaurant"' in html
    assert 'Ready about <time datetime="PT25M">25 min</time> after the kitchen accepts' in html
    assert "The restaurant&#x27;s own estimate." in html


def test_an_order_past_its_expected_time_is_due_any_minute_rather_than_a_time_in_the_past(
    client, customer, restaurant, menu
):
    # given the restaurant's own 20 minutes, and an acceptance 30 minutes ago
    Restaurant.objects.filter(pk=restaurant.pk).update(prep_time_minutes=20)
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *ACCEPTED)
    accepted_ago(order, 30)
    # when
    html = page(client, customer, order)
    # then
    assert 'data-eta="due"' in html and "Ready any minute now" in html
    assert "Expected ready around" not in html


@pytest.mark.parametrize("exit_steps", [READY, READY + [("delivered", Actor.STAFF)]], ids=["ready", "delivered"])
def test_once_ready_there_is_no_estimate_but_the_actual_ready_time(client, customer, menu, exit_steps):
    # given
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *exit_steps)
    ready_at = timezone.localtime(OrderEvent.objects.get(order=order, status=S.READY).at)
    # when
    html = page(client, customer, order)
    # then
    assert "data-eta=" not in html
    assert f'data-ready-at="{ready_at.isoformat()}"' in html and "Ready at <time" in html


@pytest.mark.parametrize(
    "steps",
    [[], [("cancelled", Actor.CUSTOMER)], PAID + [("rejected", Actor.STAFF)]],
    ids=["awaiting-payment", "cancelled", "rejected"],
)
def test_before_payment_or_after_an_exit_there_is_no_estimate(client, customer, menu, steps):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *steps)
    html = page(client, customer, order)
    assert "data-eta=" not in html and "data-ready-at=" not in html


def test_the_order_pages_query_count_does_not_grow_with_past_orders(client, customer, other_customer, restaurant, menu):
    # given an order in the kitchen, first with no history
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    advance(order, *PREPARING)
    client.force_login(customer)
    url = reverse("order_detail", args=[order.pk])
    with CaptureQueriesContext(connection) as fresh:
        assert client.get(url).status_code == 200
    # when the restaurant has 80 orders behind it
    for index in range(80):
        past_order(restaurant, other_customer, prep_minutes=10 + index % 7)
    with CaptureQueriesContext(connection) as busy:
        html = client.get(url).content.decode()
    # then the page makes the same number of queries, and the estimate comes from 50 of them
    assert 'data-eta-source="measured"' in html and "last 50 orders" in html
    assert len(busy) == len(fresh)
    # (session, user, order with lines and events, payment, wallet badge, kitchen link, estimate…)
    assert len(busy) <= 9, [q["sql"] for q in busy.captured_queries]


def test_the_menu_says_how_long_the_kitchen_usually_takes(client, other_customer, restaurant, menu):
    # given
    for prep in [20, 22, 24, 26, 28]:
        past_order(restaurant, other_customer, prep_minutes=prep)
    # when
    html = client.get(reverse("restaurant_menu", args=[restaurant.slug])).content.decode()
    # then
    assert 'data-prep-minutes="24" data-prep-source="measured"' in html
    assert "Usually ready in about 24 min" in html
