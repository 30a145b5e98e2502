"""Search and the cuisine filter over restaurants and dishes, on the real MariaDB full-text
indexes (which see only committed rows: these tests commit), on the page and in the API."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ordering import selectors
from tests.factories import MenuCategoryFactory, MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def town():
    """Three restaurants: curry in two of them (one by its name), none in the pizzeria."""
    spice = RestaurantFactory(name="Spice Route", slug="spice-route", cuisine="Indian", description="North Indian.")
    bangkok = RestaurantFactory(name="Bangkok Street", slug="bangkok", cuisine="Thai", description="Street food.")
    luigi = RestaurantFactory(name="Luigi's", slug="luigi", cuisine="Italian", description="Wood-fired pizza.")
    dishes = {}
    for restaurant, names in (
        (spice, ["Chicken Curry", "Lamb Rogan Josh", "Garlic Naan"]),
        (bangkok, ["Green Curry", "Pad Thai", "Tom Yum"]),
        (luigi, ["Margherita", "Quattro Formaggi", "Tiramisu"]),
    ):
        category = MenuCategoryFactory(restaurant=restaurant, name="Mains")
        for name in names:
            dishes[name] = MenuItemFactory(category=category, name=name)
    return {"spice": spice, "bangkok": bangkok, "luigi": luigi, "dishes": dishes}


def names(matches) -> list[str]:
    return [match.restaurant.name for match in matches]


def test_a_word_finds_the_restaurants_with_matching_dishes_and_names_them(town) -> None:
    matches = selectors.restaurant_search(text="curry")
    assert sorted(names(matches)) == ["Bangkok Street", "Spice Route"]
    found = {match.restaurant.name: [dish.name for dish in match.dishes] for match in matches}
    assert found == {"Spice Route": ["Chicken Curry"], "Bangkok Street": ["Green Curry"]}


def test_every_word_must_match_and_a_prefix_is_enough(town) -> None:
    assert names(selectors.restaurant_search(text="green cur")) == ["Bangkok Street"]
    assert [d.name for d in selectors.restaurant_search(text="green cur")[0].dishes] == ["Green Curry"]
    assert selectors.restaurant_search(text="green pizza") == []


def test_a_restaurant_matches_by_its_name_cuisine_or_description(town) -> None:
    assert names(selectors.restaurant_search(text="wood-fired")) == ["Luigi's"]
    assert names(selectors.restaurant_search(text="thai")) == ["Bangkok Street"]  # cuisine and "Pad Thai"
    match = selectors.restaurant_search(text="italian")[0]
    assert match.restaurant.name == "Luigi's" and match.dishes == []


def test_the_cuisine_filter_alone_and_with_words(town) -> None:
    assert names(selectors.restaurant_search(text="", cuisine="thai")) == ["Bangkok Street"]
    assert names(selectors.restaurant_search(text="curry", cuisine="Indian")) == ["Spice Route"]
    assert selectors.cuisines() == ["Indian", "Italian", "Thai"]


def test_short_words_and_operators_find_by_name_without_an_error(town) -> None:
    assert names(selectors.restaurant_search(text="yu")) == ["Bangkok Street"]  # Tom Yum, under the index's 3
    # only operators: no words, so no search (every restaurant), and no SQL error
    assert len(selectors.restaurant_search(text='+-"()*~<>@')) == 3
    assert names(selectors.restaurant_search(text='"pad" -thai')) == ["Bangkok Street"]


def test_new_and_renamed_dishes_are_found_once_committed(town) -> None:
    MenuItemFactory(category=town["dishes"]["Margherita"].category, name="Curry Pizza")
    assert sorted(names(selectors.restaurant_search(text="curry"))) == ["Bangkok Street", "Luigi's", "Spice Route"]
    dish = town["dishes"]["Green Curry"]
    dish.name = "Green Papaya Salad"
    dish.save()
    assert "Bangkok Street" not in names(selectors.restaurant_search(text="curry"))


def test_a_search_costs_at_most_four_queries(town) -> None:
    with CaptureQueriesContext(connection) as queries:
        selectors.restaurant_search(text="curry")
    assert len(queries) <= 4


def test_the_page_searches_filters_and_says_when_nothing_matches(town) -> None:
    client = Client()
    page = client.get("/", {"q": "curry"}).content.decode()
    assert "2 restaurants found" in page
    assert "Chicken Curry" in page and "Green Curry" in page and "Luigi" not in page
    assert f'href="/r/spice-route/#item-{town["dishes"]["Chicken Curry"].pk}"' in page

    page = client.get("/", {"cuisine": "Italian"}).content.decode()
    assert "1 restaurant found" in page and "Luigi" in page and "Spice Route" not in page

    page = client.get("/", {"q": "sushi"}).content.decode()
    assert "Nothing matches that" in page

    # every restaurant without a search, and a bad cuisine is a form error, not a 500
    page = client.get("/").content.decode()
    assert all(name in page for name in ("Spice Route", "Bangkok Street", "Luigi"))
    response = client.get("/", {"cuisine": "Martian"})
    assert response.status_code == 400
    assert "There is no restaurant of that cuisine." in response.content.decode()
    response = client.get("/", {"q": "x" * 101})
    assert response.status_code == 400 and "at most 100 characters" in response.content.decode()


def test_the_api_searches_and_filters_with_matching_dishes(town) -> None:
    client = Client()
    answer = client.get("/api/v1/restaurants", {"q": "curr"}).json()
    assert sorted(r["name"] for r in answer) == ["Bangkok Street", "Spice Route"]
    spice = next(r for r in answer if r["name"] == "Spice Route")
    assert spice["matching_dishes"] == [{"id": town["dishes"]["Chicken Curry"].pk, "name": "Chicken Curry"}]

    answer = client.get("/api/v1/restaurants", {"cuisine": "italian"}).json()
    assert [r["name"] for r in answer] == ["Luigi's"] and answer[0]["matching_dishes"] is None
    assert len(client.get("/api/v1/restaurants").json()) == 3

    response = client.get("/api/v1/restaurants", {"q": "x" * 101})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
