"""Staff menu tools in a real browser: add and rename a category, move categories and dishes with
plain forms (no script needed), set a dish's VAT rate; a customer's open menu follows live."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PAGE_TIMEOUT_MS, log_in, screenshot
from tests.factories import StaffMembershipFactory


def _section_titles(page: Page) -> list[str]:
    return page.locator(".menu-section .section-title").all_inner_texts()


def test_a_new_category_and_a_move_show_live_on_a_customers_menu(
    e2e_db, run_bridge, live_url: str, page: Page, browser: Browser, password, restaurant, menu
) -> None:
    # given a cook on the staff menu and a customer looking at the menu (Starters, then Mains)
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    run_bridge()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    customer = context.new_page()
    try:
        customer.goto(f"{live_url}/r/{restaurant.slug}/")
        expect(customer.locator("main#main")).to_have_attribute("data-live", "on")
        assert _section_titles(customer) == ["Starters", "Mains"]
        log_in(page, live_url, cook.username, password, f"/staff/{restaurant.pk}/")

        # when the cook adds a Desserts category and a dish in it
        page.get_by_role("link", name="Add a category").click()
        page.get_by_label("Name", exact=True).fill("Desserts")
        page.get_by_label("Station").fill("cold")
        page.get_by_role("button", name="Add to the menu").click()
        expect(page.get_by_text("Desserts is on the menu.")).to_be_visible()
        page.locator(".staff-section", has_text="Desserts").get_by_role("link", name="Add a dish").click()
        page.get_by_label("Name", exact=True).fill("Tiramisu")
        page.get_by_label("Price").fill("6.50")
        page.get_by_label("VAT rate (%)").fill("7")
        page.get_by_role("button", name="Add to the menu").click()
        expect(page.get_by_text("Tiramisu is on the menu.")).to_be_visible()

        # then the customer's page shows the new section and dish without a reload
        expect(customer.get_by_role("heading", name="Desserts")).to_be_visible(timeout=5_000)
        expect(customer.get_by_role("heading", name="Tiramisu")).to_be_visible()

        # when the cook moves Mains up, the customer's menu reorders live
        page.get_by_role("button", name="Move Mains up").click()
        expect(page.locator(".staff-section h2").first).to_have_text("Mains")
        expect(customer.locator(".menu-section .section-title").first).to_have_text("Mains", timeout=5_000)
        assert _section_titles(customer) == ["Mains", "Starters", "Desserts"]
        # and the customer can still add a dish from the swapped-in menu
        customer.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
        expect(customer.get_by_text("Added 1 × Pizza to your cart.")).to_be_visible()
        screenshot(customer, "staff-tools-customer-menu-reordered")
    finally:
        context.close()


def _walk(page: Page, live_url: str, restaurant, menu, name: str) -> None:
    page.goto(f"{live_url}/staff/{restaurant.pk}/")
    mains = page.locator(".staff-section", has_text="Mains")

    # move a dish down and back up: plain POST forms
    expect(mains.locator(".staff-dish-name")).to_have_text(["Pasta", "Pizza"])
    page.get_by_role("button", name="Move Pasta down").click()
    expect(mains.locator(".staff-dish-name")).to_have_text(["Pizza", "Pasta"])
    expect(page.get_by_role("button", name="Move Pizza up")).to_be_disabled()
    screenshot(page, f"staff-tools-menu-{name}")
    page.get_by_role("button", name="Move Pasta up").click()
    expect(mains.locator(".staff-dish-name")).to_have_text(["Pasta", "Pizza"])

    # renaming to a name taken is a form error; a free name is saved
    old, new = ("Starters", "Small plates") if name == "desktop" else ("Small plates", "Starters")
    page.get_by_role("link", name=f"Rename {old}").click()
    page.get_by_label("Name", exact=True).fill("Mains")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("There is already a category called Mains.")).to_be_visible()
    screenshot(page, f"staff-tools-category-error-{name}")
    page.get_by_label("Name", exact=True).fill(new)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=new, exact=True)).to_be_visible()

    # a VAT rate out of range is a form error
    page.get_by_role("link", name="Edit Soup").click()
    page.get_by_label("VAT rate (%)").fill("100")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".form-errors")).to_be_visible()
    screenshot(page, f"staff-tools-vat-error-{name}")
    page.get_by_label("VAT rate (%)").fill("10.5")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(f"#dish-{menu['soup'].pk}")).to_contain_text("VAT 10.50 %")


def test_staff_menu_tools_at_desktop_and_phone(
    e2e_db, live_url: str, page: Page, phone_page: Page, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    for name, browser_page in (("desktop", page), ("phone", phone_page)):
        log_in(browser_page, live_url, cook.username, password, f"/staff/{restaurant.pk}/")
        expect(browser_page).to_have_url(re.compile(rf"/staff/{restaurant.pk}/$"))
        _walk(browser_page, live_url, restaurant, menu, name)
        assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
