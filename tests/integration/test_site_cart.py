"""The customer site's session cart: add from the menu, update, remove, one restaurant at a time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from tests.factories import MenuCategoryFactory, MenuItemFactory, RestaurantFactory
from tests.integration.site_helpers import add_to_cart, cart_of

pytestmark = pytest.mark.django_db


def test_add_to_cart_puts_the_dish_in_the_session_and_comes_back_to_the_menu(client, menu):
    # when
    response = add_to_cart(client, menu["pizza"], 2)
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("restaurant_menu", args=[menu["pizza"].restaurant.slug]))
    assert cart_of(client) == {str(menu["pizza"].pk): 2}
    page = client.get(response["Location"]).content.decode()
    assert "Added 2 × Pizza to your cart." in page
    assert 'data-cart-count="2"' in page


def test_adding_the_same_dish_again_adds_up(client, menu):
    add_to_cart(client, menu["pizza"], 2)
    add_to_cart(client, menu["pizza"], 3)
    assert cart_of(client) == {str(menu["pizza"].pk): 5}


@pytest.mark.parametrize("quantity", ["0", "-1", "51", "two", "", "1.5", "9" * 40])
def test_a_bad_quantity_is_a_form_error_and_leaves_the_cart_alone(client, menu, quantity):
    # when
    response = add_to_cart(client, menu["pizza"], quantity)
    # then
    assert response.status_code == 400
    assert response.context["add_form"].errors["quantity"]
    assert 'aria-invalid="true"' in response.content.decode()
    assert cart_of(client) == {}


def test_a_dish_of_another_restaurant_or_unknown_id_is_refused(client, restaurant, menu):
    # given a dish of another restaurant posted to this restaurant's menu
    stranger = MenuItemFactory()
    # when
    wrong_menu = client.post(
        reverse("restaurant_menu", args=[restaurant.slug]), {"item_id": stranger.pk, "quantity": 1}
    )
    unknown = client.post(reverse("restaurant_menu", args=[restaurant.slug]), {"item_id": "abc", "quantity": 1})
    # then
    assert wrong_menu.status_code == 400 and "That dish is not on this menu." in wrong_menu.content.decode()
    assert unknown.status_code == 400
    assert cart_of(client) == {}


def test_a_closed_restaurant_or_unavailable_dish_cannot_be_added(client, restaurant, menu):
    # given
    menu["pasta"].is_available = False
    menu["pasta"].save()
    # when
    unavailable = add_to_cart(client, menu["pasta"])
    restaurant.is_open = False
    restaurant.save()
    closed = add_to_cart(client, menu["pizza"])
    # then
    assert unavailable.status_code == 400 and "Pasta is not available right now." in unavailable.content.decode()
    assert closed.status_code == 400 and "is closed and takes no orders now" in closed.content.decode()
    assert cart_of(client) == {}


def test_more_than_the_stock_left_today_is_refused(client, menu):
    # given the soup has 5 left today and 4 are in the cart
    add_to_cart(client, menu["soup"], 4)
    # when
    response = add_to_cart(client, menu["soup"], 2)
    # then
    assert response.status_code == 400
    assert "Only 5 Soup left today." in response.content.decode()
    assert cart_of(client) == {str(menu["soup"].pk): 4}


def test_adding_from_another_restaurant_empties_the_cart_and_says_so(client, menu):
    # given
    add_to_cart(client, menu["pizza"], 2)
    other = RestaurantFactory(name="Noodle Place")
    noodles = MenuItemFactory(category=MenuCategoryFactory(restaurant=other), name="Noodles")
    # when
    response = add_to_cart(client, noodles, 1)
    # then
    assert cart_of(client) == {str(noodles.pk): 1}
    page = client.get(response["Location"]).content.decode()
    assert "Your cart held dishes from Casa Test" in page
    assert "starts fresh with Noodles" in page


def test_cart_page_shows_lines_at_current_prices_and_the_total(client, menu):
    # given
    add_to_cart(client, menu["pizza"], 2)
    add_to_cart(client, menu["soup"], 1)
    menu["pizza"].price = "12.00"  # the price changes after it was added
    menu["pizza"].save()
    # when
    response = client.get(reverse("cart"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "Pizza" in html and "Soup" in html
    assert "€24.00" in html and "€4.10" in html
    assert response.context["total"] == Decimal("28.10")
    assert "€28.10" in html
    assert f'href="{reverse("checkout")}"' in html and ">Checkout</a>" in html


def test_cart_update_changes_the_quantity(client, menu):
    # given
    add_to_cart(client, menu["pizza"], 2)
    # when
    response = client.post(
        reverse("cart"), {"item_id": menu["pizza"].pk, "quantity": 4, "action": "update"}, follow=True
    )
    # then
    assert cart_of(client) == {str(menu["pizza"].pk): 4}
    assert "Cart updated." in response.content.decode()


def test_cart_remove_drops_the_line_and_zero_removes_too(client, menu):
    # given
    add_to_cart(client, menu["pizza"], 2)
    add_to_cart(client, menu["pasta"], 1)
    # when
    client.post(reverse("cart"), {"item_id": menu["pizza"].pk, "action": "remove"})
    client.post(reverse("cart"), {"item_id": menu["pasta"].pk, "quantity": 0, "action": "update"})
    # then
    assert cart_of(client) == {}
    assert "Your cart is empty" in client.get(reverse("cart")).content.decode()


@pytest.mark.parametrize("data", [{"quantity": "x"}, {"quantity": "999"}, {"quantity": "-2"}, {"action": "explode"}])
def test_a_bad_cart_update_is_a_form_error(client, menu, data):
    # given
    add_to_cart(client, menu["pizza"], 2)
    # when
    response = client.post(reverse("cart"), {"item_id": menu["pizza"].pk, "quantity": 1, "action": "update", **data})
    # then
    assert response.status_code == 400
    assert response.context["line_form"].errors
    assert cart_of(client) == {str(menu["pizza"].pk): 2}


def test_cart_pages_need_csrf(menu):
    # given a client that enforces CSRF like a browser
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    # when
    response = add_to_cart(client, menu["pizza"], 1)
    # then
    assert response.status_code == 403
