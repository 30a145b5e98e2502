"""Photos in the browser, at desktop and phone size: a cook uploads a dish's photo on the staff
page, and a customer's open menu shows it without a reload; the list shows the restaurant's.
Real daphne, relay, bridge, Redis and Chromium."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from ordering.models import MenuItem, StaffMembership
from tests.e2e.conftest import PAGE_TIMEOUT_MS, PHONE_VIEWPORT, VIEWPORT, log_in, screenshot
from tests.factories import StaffMembershipFactory


def picture(path: Path, colour: str) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), colour).save(out, "JPEG")
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_dish_photo_uploaded_by_the_cook_shows_on_an_open_menu(
    e2e_db, run_bridge, live_url: str, page: Page, browser: Browser, password, restaurant, menu, tmp_path, size
) -> None:
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    run_bridge()
    context = browser.new_context(viewport=cast(Any, PHONE_VIEWPORT if size == "phone" else VIEWPORT))
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    customer = context.new_page()
    pizza = menu["pizza"]
    try:
        customer.goto(f"{live_url}/r/{restaurant.slug}/")
        expect(customer.locator("main#main")).to_have_attribute("data-live", "on")
        expect(customer.locator(f"#item-{pizza.pk} img.dish-photo")).to_have_count(0)

        # when the cook uploads a photo on the dish's staff page
        log_in(page, live_url, cook.username, password, f"/staff/{restaurant.pk}/dishes/{pizza.pk}/")
        page.get_by_label("Upload a photo").set_input_files(str(picture(tmp_path / "pizza.jpg", "tomato")))
        page.get_by_role("button", name="Upload photo").click()
        expect(page.get_by_text("Photo saved.")).to_be_visible()
        expect(page.get_by_alt_text("The photo of the dish now")).to_be_visible()

        # then the customer's menu shows it without a reload, square and at both densities
        photo = customer.locator(f"#item-{pizza.pk} img.dish-photo")
        expect(photo).to_be_visible(timeout=10_000)
        expect(photo).to_have_attribute("alt", "Pizza")
        pizza = MenuItem.objects.get(pk=pizza.pk)
        expect(photo).to_have_attribute("src", pizza.photo_url("s160"))
        assert customer.evaluate("(img) => img.naturalWidth", photo.element_handle()) in (160, 320)
        assert customer.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(customer, f"menu-dish-photo-{size}")
    finally:
        context.close()


def test_the_restaurant_photo_is_its_banner_on_the_list(
    e2e_db, live_url: str, page: Page, password, restaurant, tmp_path
) -> None:
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    log_in(page, live_url, cook.username, password, f"/staff/{restaurant.pk}/opening/")
    page.get_by_label("Upload a photo").set_input_files(str(picture(tmp_path / "room.jpg", "teal")))
    page.get_by_role("button", name="Upload photo").click()
    expect(page.get_by_text("Photo saved.")).to_be_visible()
    page.goto(f"{live_url}/")
    banner = page.locator(".restaurant-card img.card-photo")
    expect(banner).to_have_attribute("alt", restaurant.name)
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", banner.element_handle())
    screenshot(page, "list-restaurant-photo")
