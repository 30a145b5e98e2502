"""Staff menu tools: a dish's VAT rate, adding and renaming categories, moving categories and
dishes up and down. Bad input is a form error and changes nothing; every change is announced
to the live menu pages."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from bus.models import OutboxMessage
from ordering.models import MenuCategory, MenuItem
from ordering.selectors import menu_by_category
from tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cook_client(restaurant) -> Client:
    client = Client()
    client.force_login(StaffMembershipFactory.create(restaurant=restaurant).user)
    return client


def dish_post(item: MenuItem, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "category": item.category_id,
        "name": item.name,
        "description": item.description,
        "price": str(item.price),
        "vat_rate": str(item.vat_rate),
        "daily_stock": "",
    }
    form.update(changes)
    return form


def test_the_dish_form_edits_the_vat_rate(restaurant, menu, cook_client):
    pizza = menu["pizza"]
    url = reverse("staff_dish", args=[restaurant.pk, pizza.pk])

    assert f'value="{pizza.vat_rate}"' in cook_client.get(url).content.decode()
    response = cook_client.post(url, dish_post(pizza, vat_rate="19.5"))

    assert response.status_code == 302
    pizza.refresh_from_db()
    assert pizza.vat_rate == Decimal("19.50")
    assert OutboxMessage.objects.filter(type="menu.item_changed", aggregate=f"menu_item:{pizza.pk}").exists()


@pytest.mark.parametrize("bad", ["100", "-1", "12.345", "abc", "NaN"])
def test_a_bad_vat_rate_is_a_form_error_and_changes_nothing(restaurant, menu, cook_client, bad):
    pizza = menu["pizza"]
    before = pizza.vat_rate

    response = cook_client.post(reverse("staff_dish", args=[restaurant.pk, pizza.pk]), dish_post(pizza, vat_rate=bad))

    assert response.status_code == 400 and "VAT rate" in response.content.decode()
    pizza.refresh_from_db()
    assert pizza.vat_rate == before and not OutboxMessage.objects.exists()


def test_a_form_without_the_vat_rate_keeps_the_dishs(restaurant, menu, cook_client, settings):
    pizza = menu["pizza"]
    MenuItem.objects.filter(pk=pizza.pk).update(vat_rate=Decimal("19.00"))
    form = dish_post(pizza, name="Pizza Margherita")
    del form["vat_rate"]

    assert cook_client.post(reverse("staff_dish", args=[restaurant.pk, pizza.pk]), form).status_code == 302
    assert MenuItem.objects.get(pk=pizza.pk).vat_rate == Decimal("19.00")


def test_a_new_dish_gets_the_vat_rate_typed_and_goes_last(restaurant, menu, cook_client):
    mains = menu["pizza"].category
    response = cook_client.post(
        reverse("staff_dish_new", args=[restaurant.pk]),
        {
            "category": mains.pk,
            "name": "Calzone",
            "description": "",
            "price": "12.00",
            "vat_rate": "7",
            "daily_stock": "",
        },
    )

    assert response.status_code == 302
    calzone = MenuItem.objects.get(name="Calzone")
    assert calzone.vat_rate == Decimal("7.00")
    assert [i.name for i in MenuItem.objects.filter(category=mains).order_by("position", "name")][-1] == "Calzone"


def test_staff_add_and_rename_a_category(restaurant, menu, cook_client):
    response = cook_client.post(
        reverse("staff_category_new", args=[restaurant.pk]), {"name": " Desserts ", "station": "cold"}
    )

    assert response.status_code == 302
    desserts = MenuCategory.objects.get(restaurant=restaurant, name="Desserts")
    assert desserts.station == "cold"
    assert desserts.position > MenuCategory.objects.get(name="Mains").position  # last on the menu
    assert OutboxMessage.objects.filter(type="restaurant.changed").count() == 1

    response = cook_client.post(
        reverse("staff_category", args=[restaurant.pk, desserts.pk]), {"name": "Sweets", "station": "pastry"}
    )

    assert response.status_code == 302
    desserts.refresh_from_db()
    assert (desserts.name, desserts.station) == ("Sweets", "pastry")
    assert OutboxMessage.objects.filter(type="restaurant.changed").count() == 2
    assert "Sweets" in cook_client.get(reverse("staff_menu", args=[restaurant.pk])).content.decode()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"name": "Mains", "station": "kitchen"}, "already a category called Mains"),
        ({"name": "   ", "station": "kitchen"}, "This field is required"),
        ({"name": "Drinks", "station": "the bar!"}, "letters, numbers"),
        ({"name": "x" * 81, "station": "kitchen"}, "at most 80"),
    ],
)
def test_a_bad_category_is_a_form_error_and_changes_nothing(restaurant, menu, cook_client, form, error):
    starters = MenuCategory.objects.get(name="Starters")
    before = list(MenuCategory.objects.values())

    for url in (
        reverse("staff_category_new", args=[restaurant.pk]),
        reverse("staff_category", args=[restaurant.pk, starters.pk]),
    ):
        response = cook_client.post(url, form)
        assert response.status_code == 400 and error in response.content.decode()

    assert list(MenuCategory.objects.values()) == before and not OutboxMessage.objects.exists()


def _names(restaurant) -> list[tuple[str, list[str]]]:
    return [(s.category.name, [i.name for i in s.items]) for s in menu_by_category(restaurant=restaurant)]


def test_staff_move_categories_and_dishes_up_and_down(restaurant, menu, cook_client):
    mains = menu["pizza"].category
    assert _names(restaurant) == [("Starters", ["Soup"]), ("Mains", ["Pasta", "Pizza"])]

    move = reverse("staff_category_move", args=[restaurant.pk, mains.pk])
    assert cook_client.post(move, {"direction": "up"}).status_code == 302
    assert _names(restaurant) == [("Mains", ["Pasta", "Pizza"]), ("Starters", ["Soup"])]

    move = reverse("staff_dish_move", args=[restaurant.pk, menu["pizza"].pk])
    assert cook_client.post(move, {"direction": "up"}).status_code == 302
    assert _names(restaurant) == [("Mains", ["Pizza", "Pasta"]), ("Starters", ["Soup"])]
    assert OutboxMessage.objects.filter(type="restaurant.changed").count() == 2

    # already first: nothing moves, nothing is announced
    assert cook_client.post(move, {"direction": "up"}).status_code == 302
    assert _names(restaurant) == [("Mains", ["Pizza", "Pasta"]), ("Starters", ["Soup"])]
    assert OutboxMessage.objects.filter(type="restaurant.changed").count() == 2

    assert cook_client.post(move, {"direction": "down"}).status_code == 302
    assert _names(restaurant) == [("Mains", ["Pasta", "Pizza"]), ("Starters", ["Soup"])]


def test_a_bad_move_changes_nothing(restaurant, menu, cook_client, customer):
    pizza = menu["pizza"]
    before = list(MenuItem.objects.values("pk", "position"))

    bad = cook_client.post(reverse("staff_dish_move", args=[restaurant.pk, pizza.pk]), {"direction": "sideways"})
    stranger = Client()
    stranger.force_login(customer)
    refused = stranger.post(reverse("staff_dish_move", args=[restaurant.pk, pizza.pk]), {"direction": "up"})
    missing = cook_client.post(reverse("staff_category_move", args=[restaurant.pk, 999999]), {"direction": "up"})

    assert (bad.status_code, refused.status_code, missing.status_code) == (400, 403, 404)
    assert list(MenuItem.objects.values("pk", "position")) == before and not OutboxMessage.objects.exists()


def test_the_menu_page_offers_the_tools(restaurant, menu, cook_client):
    page = cook_client.get(reverse("staff_menu", args=[restaurant.pk])).content.decode()

    assert "Add a category" in page
    assert 'aria-label="Rename Mains"' in page
    assert 'aria-label="Move Pizza up"' in page and 'aria-label="Move Starters down"' in page
