"""The staff pages of a restaurant: only its staff open them, bad input changes nothing, and a
closed or busy restaurant refuses orders on the site and in the API."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bus.models import OutboxMessage
from ordering import services
from ordering.models import MenuItem, Order, Restaurant
from tests.factories import MenuItemFactory, RestaurantFactory, StaffMembershipFactory
from tests.integration.site_helpers import add_to_cart, checkout_token

pytestmark = pytest.mark.django_db
JSON = "application/json"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cook(restaurant):
    return StaffMembershipFactory(restaurant=restaurant).user


def dish_form(item: MenuItem, **changes: object) -> dict[str, object]:
    form = {
        "category": item.category_id,
        "name": item.name,
        "description": item.description,
        "price": str(item.price),
        "vat_rate": str(item.vat_rate),
        "daily_stock": "" if item.daily_stock is None else item.daily_stock,
    }
    form.update(changes)
    return form


def staff_urls(restaurant, item) -> list[tuple[str, str]]:
    r = restaurant.pk
    return [
        ("get", reverse("staff_menu", args=[r])),
        ("get", reverse("staff_opening", args=[r])),
        ("get", reverse("staff_dish", args=[r, item.pk])),
        ("get", reverse("staff_dish_new", args=[r])),
        ("post", reverse("staff_dish", args=[r, item.pk])),
        ("post", reverse("staff_dish_availability", args=[r, item.pk])),
        ("post", reverse("staff_busy", args=[r])),
        ("post", reverse("staff_settings", args=[r])),
        ("post", reverse("staff_hours", args=[r])),
    ]


def test_staff_open_their_pages_and_find_them_from_the_kitchen(restaurant, menu, cook):
    client = logged_in(cook)

    assert client.get(reverse("staff_index"))["Location"] == reverse("staff_menu", args=[restaurant.pk])
    page = client.get(reverse("staff_menu", args=[restaurant.pk])).content.decode()
    assert "Pizza" in page and "Soup" in page and "Mark Pizza sold out" in page
    assert (
        f'href="{reverse("staff_menu", args=[restaurant.pk])}"'
        in client.get(reverse("kitchen_screen", args=[restaurant.pk])).content.decode()
    )
    assert 'href="/staff/"' in client.get(reverse("restaurant_list")).content.decode()
    assert client.get(reverse("staff_opening", args=[restaurant.pk])).status_code == 200


def test_customers_and_other_restaurants_staff_are_refused_and_change_nothing(restaurant, menu, customer):
    stranger = StaffMembershipFactory(restaurant=RestaurantFactory()).user
    before = (list(MenuItem.objects.values()), list(Restaurant.objects.values()), OutboxMessage.objects.count())

    for user in (customer, stranger):
        client = logged_in(user)
        for method, url in staff_urls(restaurant, menu["pizza"]):
            body = {"price": "1.00", "name": "Hacked", "available": "0", "minutes": "30", "category": 1}
            response = getattr(client, method)(url, body if method == "post" else None)
            assert response.status_code == 403, (user, url)
    assert logged_in(customer).get(reverse("staff_index")).status_code == 403
    # Not signed in: to the login page.
    assert Client().get(reverse("staff_menu", args=[restaurant.pk])).status_code == 302
    assert (list(MenuItem.objects.values()), list(Restaurant.objects.values()), OutboxMessage.objects.count()) == before


def test_a_dish_of_another_restaurant_or_none_is_404(restaurant, cook):
    other = RestaurantFactory()
    foreign = MenuItemFactory.create(category__restaurant=other)
    client = logged_in(cook)
    assert client.get(reverse("staff_dish", args=[restaurant.pk, foreign.pk])).status_code == 404
    assert client.post(reverse("staff_dish_availability", args=[restaurant.pk, foreign.pk])).status_code == 404
    assert client.get(reverse("staff_menu", args=[999_999])).status_code == 404
    assert MenuItem.objects.get(pk=foreign.pk).is_available


def test_staff_edit_a_price_and_the_change_is_announced(restaurant, menu, cook):
    pizza = menu["pizza"]

    response = logged_in(cook).post(
        reverse("staff_dish", args=[restaurant.pk, pizza.pk]), dish_form(pizza, price="12.90", name="Pizza Napoli")
    )

    assert response.status_code == 302
    pizza.refresh_from_db()
    assert (pizza.name, pizza.price) == ("Pizza Napoli", Decimal("12.90"))
    message = OutboxMessage.objects.latest("pk")
    assert message.type == "menu.item_changed" and message.aggregate == f"menu_item:{pizza.pk}"


@pytest.mark.parametrize(
    "changes",
    [
        {"price": "abc"},
        {"price": "-1.00"},
        {"price": "0"},
        {"price": "12.345"},
        {"price": "100000"},
        {"price": ""},
        {"name": "   "},
        {"daily_stock": "-3"},
        {"daily_stock": "lots"},
        {"category": "999999"},
    ],
)
def test_bad_dish_input_is_a_form_error_and_changes_nothing(restaurant, menu, cook, changes):
    pizza = menu["pizza"]
    before = (list(MenuItem.objects.values()), OutboxMessage.objects.count())

    response = logged_in(cook).post(reverse("staff_dish", args=[restaurant.pk, pizza.pk]), dish_form(pizza, **changes))

    assert response.status_code == 400
    assert 'class="alert alert-error form-errors"' in response.content.decode()
    assert (list(MenuItem.objects.values()), OutboxMessage.objects.count()) == before


def test_staff_add_a_dish(restaurant, menu, cook):
    category = menu["pizza"].category
    response = logged_in(cook).post(
        reverse("staff_dish_new", args=[restaurant.pk]),
        {"category": category.pk, "name": "Calzone", "description": "Folded", "price": "13.00", "daily_stock": "8"},
    )

    assert response.status_code == 302
    calzone = MenuItem.objects.get(name="Calzone")
    assert (calzone.restaurant_id, calzone.price, calzone.daily_stock, calzone.is_available) == (
        restaurant.pk,
        Decimal("13.00"),
        8,
        True,
    )


def test_a_new_daily_limit_keeps_what_was_sold_today(restaurant, menu, cook):
    soup = menu["soup"]  # 5 a day
    MenuItem.objects.filter(pk=soup.pk).update(stock_remaining=2, stock_date=timezone.localdate())

    logged_in(cook).post(reverse("staff_dish", args=[restaurant.pk, soup.pk]), dish_form(soup, daily_stock="10"))

    assert MenuItem.objects.get(pk=soup.pk).remaining_today == 7


def test_the_sold_out_toggle_takes_a_dish_off_sale_and_back(restaurant, menu, cook):
    client = logged_in(cook)
    url = reverse("staff_dish_availability", args=[restaurant.pk, menu["pasta"].pk])

    client.post(url, {"available": "0"})
    assert not MenuItem.objects.get(pk=menu["pasta"].pk).is_available
    assert "Back on sale" in client.get(reverse("staff_menu", args=[restaurant.pk])).content.decode()
    client.post(url, {"available": "1"})
    assert MenuItem.objects.get(pk=menu["pasta"].pk).is_available


def test_busy_for_minutes_ends_by_itself_and_resume_ends_it_now(restaurant, menu, cook):
    client = logged_in(cook)

    client.post(reverse("staff_busy", args=[restaurant.pk]), {"minutes": "30"})
    restaurant.refresh_from_db()
    assert restaurant.busy and restaurant.busy_until is not None
    assert not restaurant.availability.taking_orders
    later = restaurant.busy_until + datetime.timedelta(seconds=1)
    assert restaurant.availability_at(later).taking_orders

    client.post(reverse("staff_busy", args=[restaurant.pk]), {"resume": "1"})
    restaurant.refresh_from_db()
    assert not restaurant.busy and restaurant.availability.taking_orders
    assert OutboxMessage.objects.filter(type="restaurant.changed").count() == 2


@pytest.mark.parametrize(
    ("url_name", "body"),
    [
        ("staff_busy", {"minutes": "0"}),
        ("staff_busy", {"minutes": "soon"}),
        ("staff_busy", {"minutes": "100000"}),
        ("staff_settings", {"is_open": "on", "prep_time_minutes": "0"}),
        ("staff_settings", {"is_open": "on", "prep_time_minutes": "many"}),
        ("staff_hours", {"day_0": "11:00-25:00"}),
        ("staff_hours", {"day_0": "noon"}),
        ("staff_hours", {"exceptions": "tomorrow closed"}),
        ("staff_hours", {"exceptions": "2030-01-01 9-5"}),
    ],
)
def test_bad_opening_input_is_a_form_error_and_changes_nothing(restaurant, cook, url_name, body):
    before = (list(Restaurant.objects.values()), OutboxMessage.objects.count())

    response = logged_in(cook).post(reverse(url_name, args=[restaurant.pk]), body)

    assert response.status_code == 400
    assert 'class="alert alert-error form-errors"' in response.content.decode()
    assert (list(Restaurant.objects.values()), OutboxMessage.objects.count()) == before


def test_staff_set_preparation_time_and_hours(restaurant, cook):
    client = logged_in(cook)
    client.post(reverse("staff_settings", args=[restaurant.pk]), {"is_open": "on", "prep_time_minutes": "35"})
    client.post(
        reverse("staff_hours", args=[restaurant.pk]),
        {
            "day_0": "11:00-14:30, 18:00-23:00",
            "day_4": "18:00-02:00",
            "exceptions": "2099-12-25 closed\n2000-01-01 closed",
        },
    )

    restaurant.refresh_from_db()
    assert restaurant.prep_time_minutes == 35 and restaurant.is_open
    assert restaurant.opening_hours == {
        "0": [["11:00", "14:30"], ["18:00", "23:00"]],
        "1": [],
        "2": [],
        "3": [],
        "4": [["18:00", "02:00"]],
        "5": [],
        "6": [],
    }
    # A past date is dropped.
    assert restaurant.hours_exceptions == {"2099-12-25": []}
    page = client.get(reverse("staff_opening", args=[restaurant.pk])).content.decode()
    assert "11:00–14:30, 18:00–23:00" in page and "2099-12-25 closed" in page


def _closed_by_hours(restaurant) -> None:
    # No day has hours: closed whenever this test runs.
    Restaurant.objects.filter(pk=restaurant.pk).update(hours_exceptions={timezone.localdate().isoformat(): []})


def test_the_api_refuses_a_busy_restaurant_with_its_own_code(restaurant, menu, customer):
    services.restaurant_set_busy(restaurant_id=restaurant.pk, minutes=20)
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "1 Road",
    }

    response = client.post("/api/v1/orders", body, content_type=JSON)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "restaurant_busy"
    assert "busy" in error["message"] and error["details"]["reason"] == "busy" and error["details"]["next_open"]
    assert Order.objects.count() == 0

    _closed_by_hours(restaurant)
    services.restaurant_resume(restaurant_id=restaurant.pk)
    closed = client.post("/api/v1/orders", body, content_type=JSON).json()["error"]
    assert closed["code"] == "restaurant_closed" and closed["details"]["reason"] == "exception_day"
    assert Order.objects.count() == 0


def test_the_site_refuses_a_busy_restaurant_with_a_message(restaurant, menu, customer):
    client = logged_in(customer)
    add_to_cart(client, menu["pizza"])
    token = checkout_token(client)
    services.restaurant_set_busy(restaurant_id=restaurant.pk, minutes=None)

    menu_page = client.get(reverse("restaurant_menu", args=[restaurant.slug])).content.decode()
    assert "is very busy and has paused new orders" in menu_page and "Add to cart" not in menu_page
    refused = add_to_cart(client, menu["pasta"])
    assert refused.status_code == 400 and "is very busy" in refused.content.decode()
    checkout = client.post(reverse("checkout"), {"delivery_address": "1 Road", "checkout_token": token})
    assert checkout.status_code == 409 and "is very busy" in checkout.content.decode()
    assert Order.objects.count() == 0


def test_the_list_and_menu_show_state_and_todays_hours(restaurant, menu):
    Restaurant.objects.filter(pk=restaurant.pk).update(opening_hours={str(d): [["00:00", "00:00"]] for d in range(7)})
    listing = Client().get(reverse("restaurant_list")).content.decode()
    assert "Today all day" in listing and 'data-state="open"' in listing

    _closed_by_hours(restaurant)
    page = Client().get(reverse("restaurant_menu", args=[restaurant.slug])).content.decode()
    assert "is closed all day today" in page and "Add to cart" not in page
    assert 'data-state="exception_day"' in Client().get(reverse("restaurant_list")).content.decode()


def test_the_api_schema_documents_the_new_code_and_the_restaurant_state(restaurant):
    schema = Client().get("/api/v1/openapi.json").json()
    refusals = schema["paths"]["/api/v1/orders"]["post"]["responses"]["422"]["description"]
    assert "`restaurant_busy`" in refusals and "`restaurant_closed`" in refusals

    services.restaurant_set_busy(restaurant_id=restaurant.pk, minutes=10)
    [listed] = Client().get("/api/v1/restaurants").json()
    assert (listed["is_open"], listed["taking_orders"], listed["state"]) == (True, False, "busy")
    assert listed["next_open"]


def test_every_demo_restaurant_has_opening_hours_and_takes_orders():
    call_command("seed_demo", stdout=io.StringIO())

    demo = Restaurant.objects.filter(slug__in=["trattoria-nonna-lucia", "sakura-ramen-bar", "green-bowl-kitchen"])
    assert demo.count() == 3
    for restaurant in demo:
        assert restaurant.opening_hours and restaurant.availability.taking_orders
        assert restaurant.availability.today_text == "all day"
