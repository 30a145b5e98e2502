"""The kitchen screen's pages: only a restaurant's staff open its screen."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import MenuCategoryFactory, RestaurantFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_open_their_kitchen_screen_with_its_stations(restaurant, menu):
    MenuCategoryFactory(restaurant=restaurant, name="Drinks", station="bar")
    cook = StaffMembershipFactory(restaurant=restaurant).user
    client = logged_in(cook)

    assert client.get(reverse("kitchen_index")).url == reverse("kitchen_screen", args=[restaurant.pk])
    page = client.get(reverse("kitchen_screen", args=[restaurant.pk]) + "?station=bar&station=nonsense")

    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-restaurant-id="{restaurant.pk}"' in html and 'data-stations="bar"' in html
    assert 'value="kitchen"' in html and 'value="bar" checked' in html
    # the nav of the site offers the kitchen to staff
    assert 'href="/kitchen/"' in client.get(reverse("restaurant_list")).content.decode()


def test_staff_of_several_kitchens_choose_one(restaurant):
    cook = StaffMembershipFactory(restaurant=restaurant).user
    second = RestaurantFactory(name="Second Kitchen")
    StaffMembershipFactory(restaurant=second, user=cook)

    page = logged_in(cook).get(reverse("kitchen_index"))

    assert page.status_code == 200
    assert "Second Kitchen" in page.content.decode() and restaurant.name in page.content.decode()


def test_nobody_else_opens_a_kitchen_screen(restaurant, customer):
    stranger = StaffMembershipFactory(restaurant=RestaurantFactory()).user
    url = reverse("kitchen_screen", args=[restaurant.pk])

    assert logged_in(stranger).get(url).status_code == 403
    assert logged_in(customer).get(url).status_code == 403
    assert logged_in(customer).get(reverse("kitchen_index")).status_code == 403
    assert 'href="/kitchen/"' not in logged_in(customer).get(reverse("restaurant_list")).content.decode()
    assert Client().get(url).url.startswith(reverse("login"))
    assert logged_in(stranger).get(reverse("kitchen_screen", args=[10**9])).status_code == 404
