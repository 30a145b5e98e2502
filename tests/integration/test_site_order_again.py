"""The customer site's "Order again": an earlier order's dishes back in the cart, and what an order
whose payment failed offers (top up, then order again)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from django.urls import reverse

from billing.models import Payment
from ordering.models import MenuItem, Order
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus
from tests.factories import MenuItemFactory, OrderFactory
from tests.integration.site_helpers import add_to_cart, cart_of

pytestmark = pytest.mark.django_db


def place(**fields: Any) -> Order:
    """An order placed through ``order_place`` (tests.factories.OrderFactory)."""
    return cast(Order, OrderFactory(**fields))


def _order_again(client, order):
    return client.post(reverse("order_again", args=[order.pk]), follow=True)


def test_order_again_fills_the_cart_with_the_orders_dishes_and_shows_the_cart(client, customer, menu):
    # given
    order = place(customer=customer, items=[(menu["pizza"], 2), (menu["soup"], 1)])
    client.force_login(customer)
    # when
    response = _order_again(client, order)
    # then
    assert response.redirect_chain == [(reverse("cart"), 302)]
    assert cart_of(client) == {str(menu["pizza"].pk): 2, str(menu["soup"].pk): 1}
    html = response.content.decode()
    assert f"Order #{order.pk}&#x27;s dishes are in your cart." in html
    assert "€27.10" in html  # 2 × 11.50 + 4.10, at today's prices


def test_order_again_skips_dishes_no_longer_available_and_names_them(client, customer, menu):
    # given an order of three dishes, two of which cannot be ordered today
    order = place(customer=customer, items=[(menu["pizza"], 1), (menu["pasta"], 2), (menu["soup"], 1)])
    menu["pasta"].is_available = False
    menu["pasta"].save()
    menu["soup"].stock_remaining, menu["soup"].stock_date = 0, order.stock_date
    menu["soup"].save()
    client.force_login(customer)
    # when
    response = _order_again(client, order)
    # then only the pizza is in the cart, and the page says which were left out
    assert cart_of(client) == {str(menu["pizza"].pk): 1}
    assert "Pasta and Soup are not available any more and were left out." in response.content.decode()


def test_order_again_lowers_a_quantity_to_what_is_left_today(client, customer, menu):
    # given 4 soups ordered, 2 left today
    order = place(customer=customer, items=[(menu["soup"], 4)])
    menu["soup"].refresh_from_db()
    menu["soup"].stock_remaining = 2
    menu["soup"].save()
    client.force_login(customer)
    # when
    response = _order_again(client, order)
    # then
    assert cart_of(client) == {str(menu["soup"].pk): 2}
    assert "Only 2 Soup can be ordered now, so your cart has 2." in response.content.decode()


def test_order_again_when_nothing_can_be_ordered_leaves_the_cart_alone(client, customer, menu):
    # given a cart with a pasta, and an order of only a pizza that is now unavailable
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    menu["pizza"].is_available = False
    menu["pizza"].save()
    client.force_login(customer)
    add_to_cart(client, menu["pasta"], 3)
    # when
    response = _order_again(client, order)
    # then
    assert response.redirect_chain == [(reverse("order_detail", args=[order.pk]), 302)]
    assert cart_of(client) == {str(menu["pasta"].pk): 3}
    assert "Pizza is not available any more, so nothing was added. Your cart is unchanged." in response.content.decode()


def test_order_again_at_a_closed_restaurant_leaves_the_cart_alone(client, customer, restaurant, menu):
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    restaurant.is_open = False
    restaurant.save()
    client.force_login(customer)
    response = _order_again(client, order)
    assert cart_of(client) == {}
    assert "Casa Test is closed and takes no orders now. Your cart is unchanged." in response.content.decode()


def test_order_again_replaces_a_cart_of_another_restaurant_and_says_so(client, customer, menu):
    # given a cart holding a dish of another restaurant
    elsewhere = cast(MenuItem, MenuItemFactory(name="Ramen", price=Decimal("8.00")))
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    client.force_login(customer)
    add_to_cart(client, elsewhere, 2)
    # when
    response = _order_again(client, order)
    # then
    assert cart_of(client) == {str(menu["pizza"].pk): 1}
    assert client.session["cart"]["restaurant_id"] == menu["pizza"].restaurant_id
    html = response.content.decode()
    assert (
        f"Your cart held other dishes from {elsewhere.restaurant.name}: they were replaced by order #{order.pk}" in html
    )


def test_order_again_of_another_customers_order_is_a_404_and_changes_nothing(client, customer, other_customer, menu):
    # given
    order = place(customer=other_customer, items=[(menu["pizza"], 1)])
    client.force_login(customer)
    add_to_cart(client, menu["pasta"], 1)
    # when
    response = client.post(reverse("order_again", args=[order.pk]))
    unknown = client.post(reverse("order_again", args=[order.pk + 1000]))
    # then
    assert response.status_code == 404 and unknown.status_code == 404
    assert cart_of(client) == {str(menu["pasta"].pk): 1}


def test_order_again_by_get_is_the_405_page_and_changes_nothing(client, customer, menu):
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    client.force_login(customer)
    response = client.get(reverse("order_again", args=[order.pk]))
    assert response.status_code == 405
    assert "<h1" in response.content.decode()
    assert cart_of(client) == {}


def test_order_again_needs_a_login(client, customer, menu):
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    response = client.post(reverse("order_again", args=[order.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_order_again_needs_the_csrf_token(customer, menu):
    from django.test import Client

    order = place(customer=customer, items=[(menu["pizza"], 1)])
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(reverse("order_again", args=[order.pk]))
    assert response.status_code == 403
    assert cart_of(client) == {}


def test_the_history_and_the_order_page_offer_order_again(client, customer, menu):
    order = place(customer=customer, items=[(menu["pizza"], 1)])
    client.force_login(customer)
    action = f'action="{reverse("order_again", args=[order.pk])}"'
    assert action in client.get(reverse("order_history")).content.decode()
    assert action in client.get(reverse("order_detail", args=[order.pk])).content.decode()


def test_a_failed_payment_explains_why_and_offers_top_up_and_order_again(client, customer, menu):
    # given an order whose payment failed for want of money
    order = place(customer=customer, items=[(menu["pizza"], 2)])
    reason = "insufficient funds: the wallet holds €0.00"
    order_transition(order_id=order.pk, to=OrderStatus.PAYMENT_FAILED, actor_kind=Actor.SYSTEM, reason=reason)
    Payment.objects.create(order=order, amount=order.total, status=Payment.Status.FAILED, failure_reason=reason)
    client.force_login(customer)
    # when
    html = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    # then
    assert (
        "The payment did not go through:</strong> insufficient funds: the wallet holds €0.00. Nothing was charged."
        in html
    )
    order_url = reverse("order_detail", args=[order.pk])
    assert f'href="{reverse("wallet")}?next={order_url.replace("/", "%2F")}&amp;amount=23.00"' in html
    assert "Top up and try again" in html
    assert f'action="{reverse("order_again", args=[order.pk])}"' in html
    # and the wallet page, opened from there, suggests the amount and leads back to the order
    wallet = client.get(reverse("wallet"), {"next": order_url, "amount": "23.00"}).content.decode()
    assert 'value="23.00"' in wallet and f'href="{order_url}">Go back</a>' in wallet
