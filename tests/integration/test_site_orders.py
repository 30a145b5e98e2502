"""The customer site: checkout, order tracking, cancelling and history."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from ordering import services
from ordering.models import MenuItem, Order, OrderEvent
from ordering.status import Actor, OrderStatus
from tests.factories import MenuCategoryFactory, MenuItemFactory, OrderFactory, RestaurantFactory
from tests.integration.site_helpers import add_to_cart, cart_of, checkout_token

pytestmark = pytest.mark.django_db


# Checkout ------------------------------------------------------------------------------


def test_checkout_is_prefilled_with_the_default_address_and_shows_the_total(client, customer, menu):
    # given
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)
    # when
    response = client.get(reverse("checkout"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="delivery_address"' in html and 'value="1 Test Lane"' in html
    assert 'name="notes"' in html and 'name="checkout_token"' in html
    assert "€23.00" in html and "Place order" in html


def test_checkout_with_an_empty_cart_goes_back_to_the_cart(client, customer):
    client.force_login(customer)
    response = client.get(reverse("checkout"), follow=True)
    assert response.redirect_chain == [(reverse("cart"), 302)]
    assert "Your cart is empty" in response.content.decode()


def test_checkout_places_a_pending_order_at_server_prices_even_with_a_forged_price(client, customer, menu):
    # given
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)
    add_to_cart(client, menu["soup"], 1)
    token = checkout_token(client)
    # when the POST also carries made-up price and total fields
    response = client.post(
        reverse("checkout"),
        {
            "delivery_address": "9 Elm Street",
            "notes": "Ring twice",
            "checkout_token": token,
            "price": "0.01",
            "total": "0.01",
            "unit_price": "0.01",
        },
    )
    # then
    order = Order.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == reverse("order_detail", args=[order.pk])
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total == Decimal("27.10")
    assert (order.delivery_address, order.notes) == ("9 Elm Street", "Ring twice")
    assert sorted((line.name, line.quantity, line.unit_price) for line in order.lines.all()) == [
        ("Pizza", 2, Decimal("11.50")),
        ("Soup", 1, Decimal("4.10")),
    ]
    assert cart_of(client) == {}
    page = client.get(response["Location"]).content.decode()
    assert f"Order #{order.pk} is placed" in page


def test_a_double_submitted_checkout_form_places_one_order(client, customer, menu):
    # given one rendered form, submitted twice
    client.force_login(customer)
    add_to_cart(client, menu["soup"], 2)
    token = checkout_token(client)
    data = {"delivery_address": "9 Elm Street", "notes": "", "checkout_token": token}
    # when
    first = client.post(reverse("checkout"), data)
    second = client.post(reverse("checkout"), data)
    # then
    order = Order.objects.get(customer=customer)
    assert first["Location"] == second["Location"] == reverse("order_detail", args=[order.pk])
    assert Order.objects.filter(customer=customer).count() == 1
    assert MenuItem.objects.get(pk=menu["soup"].pk).remaining_today == 3


def test_a_double_submit_while_the_cart_is_still_full_replays_the_first_order(client, customer, menu):
    # given the first submit placed the order but its response never arrived (the cart
    # still holds the dishes in the second request's session)
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 1)
    token = checkout_token(client)
    data = {"delivery_address": "9 Elm Street", "notes": "", "checkout_token": token}
    session_before = dict(client.session["cart"])
    first = client.post(reverse("checkout"), data)
    session = client.session
    session["cart"] = session_before
    session.save()
    # when
    second = client.post(reverse("checkout"), data)
    # then
    assert Order.objects.filter(customer=customer).count() == 1
    assert second["Location"] == first["Location"]


def test_each_render_of_the_checkout_form_has_its_own_token(client, customer, menu):
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 1)
    assert checkout_token(client) != checkout_token(client)


def test_out_of_stock_checkout_shows_a_form_error_and_writes_nothing(client, customer, other_customer, menu):
    # given the cart holds the last 5 soups, then someone else buys one
    client.force_login(customer)
    add_to_cart(client, menu["soup"], 5)
    token = checkout_token(client)
    OrderFactory(customer=other_customer, dish=menu["soup"], quantity=1)
    orders_before, events_before = Order.objects.count(), OrderEvent.objects.count()
    # when
    response = client.post(reverse("checkout"), {"delivery_address": "9 Elm Street", "checkout_token": token})
    # then
    assert response.status_code == 409
    assert "Not enough Soup left today." in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert (Order.objects.count(), OrderEvent.objects.count()) == (orders_before, events_before)
    assert MenuItem.objects.get(pk=menu["soup"].pk).remaining_today == 4
    assert cart_of(client) == {str(menu["soup"].pk): 5}
    # and the form comes back with a fresh token
    assert response.context["checkout_token"] != token


def test_checkout_at_a_closed_restaurant_or_unavailable_dish_is_a_form_error(client, customer, restaurant, menu):
    # given
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 1)
    restaurant.is_open = False
    restaurant.save()
    # when
    closed = client.post(reverse("checkout"), {"delivery_address": "x", "checkout_token": checkout_token(client)})
    restaurant.is_open = True
    restaurant.save()
    MenuItem.objects.filter(pk=menu["pizza"].pk).update(is_available=False)
    unavailable = client.post(reverse("checkout"), {"delivery_address": "x", "checkout_token": checkout_token(client)})
    # then
    assert closed.status_code == 409 and "Casa Test is closed" in closed.content.decode()
    assert unavailable.status_code == 409 and "Not available right now: Pizza." in unavailable.content.decode()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"delivery_address": ""},
        {"delivery_address": "x" * 256},
        {"notes": "n" * 501},
        {"checkout_token": ""},
        {"checkout_token": "short"},
        {"checkout_token": "bad token with spaces!!"},
    ],
)
def test_bad_checkout_input_is_a_form_error_and_writes_nothing(client, customer, menu, data):
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 1)
    response = client.post(
        reverse("checkout"), {"delivery_address": "9 Elm Street", "checkout_token": checkout_token(client), **data}
    )
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not Order.objects.exists()


# Tracking ------------------------------------------------------------------------------


def test_order_page_shows_status_stepper_lines_timeline_and_live_hooks(client, customer, menu):
    # given a paid order
    order = OrderFactory(customer=customer, dish=menu["pizza"], quantity=2)
    services.order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
    client.force_login(customer)
    # when
    response = client.get(reverse("order_detail", args=[order.pk]))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-order-id="{order.pk}" data-order-version="2" data-status="paid"' in html
    assert "Paid, waiting for the kitchen" in html
    steps = [(s.status, s.state) for s in response.context["steps"]]
    assert steps == [
        ("pending_payment", "done"),
        ("paid", "current"),
        ("accepted", "upcoming"),
        ("preparing", "upcoming"),
        ("ready", "upcoming"),
        ("out_for_delivery", "upcoming"),
        ("delivered", "upcoming"),
    ]
    assert 'aria-current="step"' in html
    assert "Pizza" in html and "€11.50" in html and "€23.00" in html
    assert "Awaiting payment" in html  # the timeline's first event
    assert "1 Test Lane" in html and "Casa Test" in html
    assert ">Cancel order</button>" in html


def test_a_cancelled_order_shows_the_exit_clearly(client, customer, menu):
    # given
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    services.order_cancel(order_id=order.pk, customer=customer)
    client.force_login(customer)
    # when
    response = client.get(reverse("order_detail", args=[order.pk]))
    # then
    html = response.content.decode()
    assert [(s.status, s.state) for s in response.context["steps"]] == [
        ("pending_payment", "done"),
        ("cancelled", "exit"),
    ]
    assert "This order was cancelled." in html
    assert "Cancelled by the customer" in html
    assert "Cancel order" not in html


def test_a_picked_up_order_marks_out_for_delivery_as_skipped(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    for to, actor in [
        ("paid", Actor.SYSTEM),
        ("accepted", Actor.STAFF),
        ("preparing", Actor.STAFF),
        ("ready", Actor.STAFF),
        ("delivered", Actor.STAFF),
    ]:
        services.order_transition(order_id=order.pk, to=to, actor_kind=actor)
    client.force_login(customer)
    steps = {s.status: s.state for s in client.get(reverse("order_detail", args=[order.pk])).context["steps"]}
    assert steps["out_for_delivery"] == "skipped" and steps["delivered"] == "done"


def test_another_customers_order_is_404(client, customer, other_customer, menu):
    # given
    order = OrderFactory(customer=other_customer, dish=menu["pizza"])
    client.force_login(customer)
    # when
    page = client.get(reverse("order_detail", args=[order.pk]))
    cancel = client.post(reverse("order_cancel", args=[order.pk]))
    # then
    assert page.status_code == 404 and cancel.status_code == 404
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_cancel_of_a_pending_order_works_and_a_second_cancel_is_an_error_message(client, customer, menu):
    # given
    order = OrderFactory(customer=customer, dish=menu["soup"], quantity=2)
    client.force_login(customer)
    url = reverse("order_cancel", args=[order.pk])
    # when
    first = client.post(url, follow=True)
    second = client.post(url, follow=True)
    # then
    assert first.status_code == 200 and "Your order is cancelled." in first.content.decode()
    assert second.status_code == 200
    assert "This order can no longer be cancelled" in second.content.decode()
    assert 'role="alert"' in second.content.decode()
    order.refresh_from_db()
    assert (order.status, order.version) == (OrderStatus.CANCELLED, 2)
    assert MenuItem.objects.get(pk=menu["soup"].pk).remaining_today == 5


def test_cancel_after_the_kitchen_accepted_is_refused(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    services.order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    services.order_transition(order_id=order.pk, to="accepted", actor_kind=Actor.STAFF)
    client.force_login(customer)
    response = client.post(reverse("order_cancel", args=[order.pk]), follow=True)
    assert "This order can no longer be cancelled" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED


def test_cancel_is_post_only(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    client.force_login(customer)
    assert client.get(reverse("order_cancel", args=[order.pk])).status_code == 405


# History -------------------------------------------------------------------------------


def test_history_lists_only_my_orders_newest_first(client, customer, other_customer, menu):
    # given
    older = OrderFactory(customer=customer, dish=menu["pizza"])
    Order.objects.filter(pk=older.pk).update(created_at=timezone.now() - datetime.timedelta(days=2))
    newer = OrderFactory(customer=customer, dish=menu["pasta"])
    theirs = OrderFactory(customer=other_customer, dish=menu["pizza"])
    client.force_login(customer)
    # when
    response = client.get(reverse("order_history"))
    # then
    html = response.content.decode()
    assert [o.pk for o in response.context["orders"]] == [newer.pk, older.pk]
    assert html.index(f'data-order-id="{newer.pk}"') < html.index(f'data-order-id="{older.pk}"')
    assert f'data-order-id="{theirs.pk}"' not in html
    assert "Awaiting payment" in html and "€9.25" in html
    assert reverse("order_detail", args=[newer.pk]) in html


def test_history_without_orders_shows_an_empty_state(client, customer):
    client.force_login(customer)
    assert "No orders yet" in client.get(reverse("order_history")).content.decode()


def test_a_whole_order_through_the_pages(client, menu):
    # given a new customer who signs up from the checkout redirect
    other = RestaurantFactory(name="Elsewhere")
    MenuItemFactory(category=MenuCategoryFactory(restaurant=other))
    add_to_cart(client, menu["pasta"], 3)
    login_redirect = client.get(reverse("checkout"))
    assert login_redirect["Location"] == f"{reverse('login')}?next={reverse('checkout')}"
    signup = client.post(
        reverse("signup") + f"?next={reverse('checkout')}",
        {
            "username": "walker",
            "email": "w@example.com",
            "password": "tasty-noodles-42",
            "password_confirm": "tasty-noodles-42",
        },
    )
    assert signup["Location"] == reverse("checkout")
    # when
    placed = client.post(
        reverse("checkout"), {"delivery_address": "7 Walk Way", "notes": "", "checkout_token": checkout_token(client)}
    )
    # then
    order = Order.objects.get(customer__username="walker")
    assert placed["Location"] == reverse("order_detail", args=[order.pk])
    assert order.total == Decimal("27.75")
    assert 'data-cart-count="0"' in client.get(placed["Location"]).content.decode()


def test_a_checkout_total_that_can_never_be_paid_is_a_form_error_and_writes_nothing(client, customer, restaurant):
    # given a cart of 50 of a dish at 250.00: 12,500.00, over the wallet's limit of one payment
    dish = MenuItemFactory(category=MenuCategoryFactory(restaurant=restaurant), price=Decimal("250.00"))
    client.force_login(customer)
    add_to_cart(client, dish, 50)
    token = checkout_token(client)
    # when
    response = client.post(reverse("checkout"), {"delivery_address": "9 Elm Street", "checkout_token": token})
    # then
    html = response.content.decode()
    assert response.status_code == 400
    assert "€10,000.00" in html and 'role="alert"' in html
    assert not Order.objects.exists()
    assert cart_of(client) == {str(dish.pk): 50}
