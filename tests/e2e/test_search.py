"""Search and the cuisine filter in the browser, at desktop and phone size: typed words find the
restaurants with matching dishes, a dish link opens the menu at it, a cuisine narrows the list,
and nothing found says so. Real daphne, MariaDB's full-text indexes and Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from ordering.models import MenuItem
from tests.e2e.conftest import screenshot
from tests.factories import MenuCategoryFactory, MenuItemFactory, RestaurantFactory


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_customer_searches_dishes_and_filters_by_cuisine(
    e2e_db, live_url: str, page: Page, phone_page: Page, size
) -> None:
    browser_page = page if size == "desktop" else phone_page
    spice = RestaurantFactory(name="Spice Route", slug="spice-route", cuisine="Indian")
    bangkok = RestaurantFactory(name="Bangkok Street", slug="bangkok", cuisine="Thai")
    luigi = RestaurantFactory(name="Luigi's", slug="luigi", cuisine="Italian")
    for restaurant, names in (
        (spice, ["Chicken Curry", "Garlic Naan"]),
        (bangkok, ["Green Curry", "Pad Thai"]),
        (luigi, ["Margherita"]),
    ):
        category = MenuCategoryFactory(restaurant=restaurant, name="Mains")
        for name in names:
            MenuItemFactory(category=category, name=name)

    # when they search for "curry"
    browser_page.goto(f"{live_url}/")
    browser_page.get_by_label("Search restaurants and dishes").fill("curry")
    browser_page.get_by_role("button", name="Search").click()

    # then the two curry houses are listed with their matching dishes, the pizzeria is not
    results = browser_page.locator("#restaurant-results")
    expect(browser_page.get_by_role("heading", name="2 restaurants found")).to_be_visible()
    expect(results).to_contain_text("Chicken Curry")
    expect(results).to_contain_text("Green Curry")
    expect(results).not_to_contain_text("Luigi")
    assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(browser_page, f"search-curry-{size}")

    # when they open a matching dish, the menu opens at it
    results.get_by_role("link", name="Green Curry").click()
    expect(browser_page).to_have_url(f"{live_url}/r/bangkok/#item-{MenuItem.objects.get(name='Green Curry').pk}")

    # when they filter by a cuisine only
    browser_page.goto(f"{live_url}/")
    browser_page.get_by_label("Cuisine").select_option("Italian")
    browser_page.get_by_role("button", name="Search").click()
    expect(browser_page.get_by_role("heading", name="1 restaurant found")).to_be_visible()
    expect(browser_page.locator("#restaurant-results")).to_contain_text("Luigi's")

    # and a search that finds nothing says so, with a way back
    browser_page.get_by_label("Search restaurants and dishes").fill("sushi")
    browser_page.get_by_role("button", name="Search").click()
    expect(browser_page.locator("#no-results")).to_contain_text("Nothing matches that")
    screenshot(browser_page, f"search-nothing-{size}")
    browser_page.get_by_role("link", name="Show every restaurant").click()
    expect(browser_page.get_by_role("heading", name="Restaurants", exact=True)).to_be_visible()
