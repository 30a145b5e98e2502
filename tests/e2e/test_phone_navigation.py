"""The site's navigation on a phone (390x844): a menu button that opens and closes the links,
by touch and by keyboard, with nothing off-screen sideways; and the header of restaurant staff,
which has no customer's wallet or cart."""

from __future__ import annotations

from typing import cast

from playwright.sync_api import Page, expect

from ordering.models import StaffMembership
from tests.e2e.conftest import log_in, screenshot
from tests.factories import StaffMembershipFactory

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_on_a_phone_account_and_log_out_are_behind_the_menu_button(
    e2e_db, live_url: str, phone_page: Page, customer, password
) -> None:
    # given a signed-in customer on a phone
    page = phone_page
    log_in(page, live_url, customer.username, password, "/")
    toggle = page.get_by_role("button", name="Menu")
    account = page.get_by_role("link", name="Account")
    log_out = page.get_by_role("button", name="Log out")

    # then the links are folded under the menu button, and nothing scrolls sideways
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_attribute("aria-controls", "site-nav")
    expect(account).to_be_hidden()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "phone-nav-closed")

    # when the menu is tapped
    toggle.tap()

    # then Account and Log out are on screen, inside the viewport, still without sideways scrolling
    expect(toggle).to_have_attribute("aria-expanded", "true")
    for control in (account, log_out):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "phone-nav-open")

    # when Escape is pressed the menu closes and the focus is back on its button
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(account).to_be_hidden()
    expect(toggle).to_be_focused()

    # and by keyboard alone: Enter opens it, Tab reaches the links in order
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Restaurants")).to_be_focused()

    # and Account leads to the account page
    account.click()
    expect(page).to_have_url(f"{live_url}/account/")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


def test_on_a_desktop_there_is_no_menu_button(e2e_db, live_url: str, page: Page, customer, password) -> None:
    log_in(page, live_url, customer.username, password, "/")
    expect(page.get_by_role("link", name="Account")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()


def test_restaurant_staff_see_no_wallet_or_cart_in_the_header(
    e2e_db, live_url: str, page: Page, restaurant, password
) -> None:
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    log_in(page, live_url, cook.username, password, "/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Kitchen")).to_be_visible()
    expect(nav.get_by_role("link", name="Account")).to_be_visible()
    expect(page.locator("a.nav-wallet")).to_have_count(0)
    expect(page.locator("a.nav-cart")).to_have_count(0)
