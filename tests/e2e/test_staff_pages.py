"""The staff pages of a restaurant, in a real browser: what the staff change shows live on a
customer's open menu page, busy mode refuses checkout, and the pages work on a phone."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PAGE_TIMEOUT_MS, log_in, screenshot
from tests.factories import StaffMembershipFactory


def _customer_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    return context.new_page()


def test_staff_change_a_price_and_sell_out_a_dish_live_on_a_customers_menu(
    e2e_db, run_bridge, live_url: str, page: Page, browser: Browser, password, restaurant, menu
) -> None:
    # given a cook on the staff pages and a customer looking at the menu
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    run_bridge()
    customer = _customer_page(browser)
    try:
        customer.goto(f"{live_url}/r/{restaurant.slug}/")
        expect(customer.locator("main#main")).to_have_attribute("data-live", "on")
        pizza, pasta = customer.locator(f"#item-{menu['pizza'].pk}"), customer.locator(f"#item-{menu['pasta'].pk}")
        expect(pizza.locator(".price")).to_contain_text("11.50")
        log_in(page, live_url, cook.username, password, "/kitchen/")
        page.get_by_role("link", name="Menu, busy and hours").click()
        expect(page).to_have_url(re.compile(rf"/staff/{restaurant.pk}/$"))

        # when the cook raises the pizza's price
        page.get_by_role("link", name="Edit Pizza").click()
        page.get_by_label("Price").fill("12.90")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Pizza is saved.")).to_be_visible()

        # then the customer's page shows the new price without a reload
        expect(pizza.locator(".price")).to_contain_text("12.90", timeout=5_000)

        # when the cook marks the pasta sold out, the customer can no longer add it
        page.get_by_role("button", name="Mark Pasta sold out").click()
        expect(page.get_by_role("button", name="Put Pasta back on sale")).to_be_visible()
        expect(pasta.get_by_role("button", name="Add to cart")).to_have_count(0, timeout=5_000)
        expect(pasta.locator(".badge-muted")).to_have_text("Unavailable")
        screenshot(customer, "staff-live-customer-menu-sold-out")

        # and back on sale, it comes back
        page.get_by_role("button", name="Put Pasta back on sale").click()
        expect(pasta.get_by_role("button", name="Add to cart")).to_be_visible(timeout=5_000)
    finally:
        customer.context.close()


def test_busy_mode_shows_live_and_refuses_checkout(
    e2e_db, run_bridge, live_url: str, page: Page, browser: Browser, password, customer, restaurant, menu
) -> None:
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    run_bridge()
    shopper = _customer_page(browser)
    try:
        # given a customer with a pizza in the cart, on the menu page
        log_in(shopper, live_url, customer.username, password, f"/r/{restaurant.slug}/")
        pizza = shopper.locator(f"#item-{menu['pizza'].pk}")
        pizza.get_by_role("button", name="Add to cart").click()
        expect(shopper.get_by_text("Added 1 × Pizza to your cart.")).to_be_visible()
        expect(shopper.locator("main#main")).to_have_attribute("data-live", "on")

        # when the cook pauses new orders for 30 minutes
        log_in(page, live_url, cook.username, password, f"/staff/{restaurant.pk}/opening/")
        page.get_by_role("button", name="Pause 30 min").click()
        expect(page.get_by_text("New orders are paused for 30 minutes.")).to_be_visible()

        # then the customer's page says so, live, and offers no more adding
        expect(shopper.locator("#restaurant-notice")).to_contain_text("is very busy", timeout=5_000)
        expect(shopper.locator("#restaurant-badge")).to_have_text("Busy")
        expect(pizza.get_by_role("button", name="Add to cart")).to_have_count(0)
        screenshot(shopper, "staff-busy-customer-menu")

        # and checkout is refused with a message on the page
        shopper.goto(f"{live_url}/checkout/")
        shopper.get_by_label("Delivery address").fill("1 Test Road")
        shopper.get_by_role("button", name=re.compile("Place order")).click()
        expect(shopper.get_by_role("alert")).to_contain_text("is very busy")
        screenshot(shopper, "staff-busy-checkout-refused")

        # when the cook resumes, the customer's menu takes orders again, live
        shopper.goto(f"{live_url}/r/{restaurant.slug}/")
        expect(shopper.locator("main#main")).to_have_attribute("data-live", "on")
        page.get_by_role("button", name="Resume taking orders").click()
        expect(pizza.get_by_role("button", name="Add to cart")).to_be_visible(timeout=5_000)
        expect(shopper.locator("#restaurant-badge")).to_have_text("Open now")
    finally:
        shopper.context.close()


def _walk(page: Page, live_url: str, restaurant, menu, name: str) -> None:
    page.goto(f"{live_url}/staff/{restaurant.pk}/")
    expect(page.get_by_role("heading", name="Mains")).to_be_visible()
    screenshot(page, f"staff-menu-{name}")

    # a bad price is a form error on the page and changes nothing
    page.get_by_role("link", name="Edit Soup").click()
    page.get_by_label("Price").fill("4,1O")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".form-errors")).to_be_visible()
    screenshot(page, f"staff-dish-error-{name}")
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator(f"#dish-{menu['soup'].pk} .price")).to_contain_text("4.10")

    page.get_by_role("link", name="Orders, busy and hours").click()
    page.get_by_label("Monday").fill("11:00-14:30, 18:00-02:00")
    page.get_by_label("Preparation time (minutes)").fill("25")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    page.get_by_label("Monday").fill("11:00-14:30, 18:00-02:00")
    page.get_by_role("button", name="Save opening hours").click()
    expect(page.get_by_text("Opening hours saved.")).to_be_visible()
    expect(page.get_by_label("Monday")).to_have_value("11:00–14:30, 18:00–02:00")
    screenshot(page, f"staff-opening-{name}")


def test_staff_pages_at_desktop_and_phone(
    e2e_db, live_url: str, page: Page, phone_page: Page, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    for name, browser_page in (("desktop", page), ("phone", phone_page)):
        log_in(browser_page, live_url, cook.username, password, f"/staff/{restaurant.pk}/")
        expect(browser_page).to_have_url(re.compile(rf"/staff/{restaurant.pk}/$"))
        _walk(browser_page, live_url, restaurant, menu, name)
        # nothing scrolls sideways
        assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
