"""WCAG 2.1 AA basics, checked by axe-core in real Chromium on every customer page, the kitchen
screen and the pick-up board, at desktop size and on a phone: no violation of impact
"serious" or "critical". And the tracking page says each status change in a live region, so a
screen reader hears it.

How axe gets into the page: the site's Content-Security-Policy allows scripts from the site's
own files only, so a ``<script>`` tag added by the test (Playwright's ``add_script_tag``) would
be refused. axe-playwright-python instead hands axe-core's source to ``page.evaluate``, which
Chromium runs through the DevTools protocol, outside the page's CSP. The policy therefore stays
in force for every page under test, as for real users: no ``bypass_csp`` context is used.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from ordering.models import Order, StaffMembership
from ordering.services import order_transition, order_transition_by_staff
from ordering.status import Actor
from tests.e2e.conftest import log_in, screenshot
from tests.factories import OrderFactory, StaffMembershipFactory, WalletFactory

BLOCKING = {"serious", "critical"}
AXE = Axe()


def violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    results = AXE.run(page, options={"resultTypes": ["violations"]})
    found: list[dict[str, Any]] = results.response["violations"]
    return [
        f"{page.url} {v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in found
        if v["impact"] in BLOCKING
    ]


@pytest.fixture(params=["desktop", "phone"])
def any_page(request: pytest.FixtureRequest) -> Page:
    return cast(Page, request.getfixturevalue("page" if request.param == "desktop" else "phone_page"))


def test_no_serious_accessibility_violation_on_the_customer_pages_the_kitchen_screen_and_the_board(
    e2e_db, live_url: str, any_page: Page, browser, customer, password, restaurant, menu
) -> None:
    page = any_page
    WalletFactory(user=customer, balance=Decimal("40.00"))
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"], paid=True))
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    found: list[str] = []

    def check(path: str, ready: str = "main") -> None:
        page.goto(f"{live_url}{path}")
        expect(page.locator(ready).first).to_be_visible()
        found.extend(violations(page))
        # and, while here: no page scrolls sideways, on a phone either
        if not page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"):
            found.append(f"{page.url} scrolls sideways")

    # a visitor; the first Tab lands on a visible skip link
    check("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    check(f"/r/{restaurant.slug}/")
    check("/login/")
    check("/signup/")
    check(f"/r/{restaurant.slug}/board/")

    # a customer, with a dish in the cart
    log_in(page, live_url, customer.username, password, f"/r/{restaurant.slug}/")
    page.locator(f"#item-{menu['pasta'].pk}").get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-count")).to_have_attribute("data-cart-count", "1")
    for path in ("/", f"/r/{restaurant.slug}/", "/cart/", "/checkout/", "/orders/", "/account/", "/wallet/"):
        check(path)
    check(f"/orders/{order.pk}/", ready="#live-state[data-state='live']")
    # the phone's menu, opened
    if page.viewport_size and page.viewport_size["width"] < 768:
        page.get_by_role("button", name="Menu").click()
        found.extend(violations(page))
    # a form with its errors shown
    page.goto(f"{live_url}/checkout/")
    page.get_by_label("Delivery address").fill("")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator(".field-invalid").first).to_be_visible()
    found.extend(violations(page))

    # the kitchen screen, with a ticket on it
    page.context.clear_cookies()
    log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    expect(page.locator(f'.ticket[data-order-id="{order.pk}"]')).to_be_visible()
    found.extend(violations(page))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the tickets")).to_be_focused()
    screenshot(page, f"a11y-kitchen-{page.viewport_size['width'] if page.viewport_size else 0}")
    # the staff pages: the menu with its move buttons, a category's form, opening hours
    for path in (
        f"/staff/{restaurant.pk}/",
        f"/staff/{restaurant.pk}/categories/new/",
        f"/staff/{restaurant.pk}/opening/",
    ):
        check(path)

    assert not found, "\n".join(found)


def test_the_tracking_page_says_each_status_change_in_a_live_region(
    e2e_db, run_bridge, live_url: str, page: Page, customer, password, restaurant, menu
) -> None:
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"]))
    run_bridge()
    log_in(page, live_url, customer.username, password, f"/orders/{order.pk}/")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    region = page.locator("#order-status-live")
    # a polite status region, outside the part of the page that is swapped on each change
    expect(region).to_have_attribute("role", "status")
    expect(region).to_have_attribute("aria-live", "polite")
    assert region.evaluate("(e) => !document.getElementById('main').contains(e)")

    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    expect(region).to_have_text(f"Order #{order.pk}: Paid, waiting for the kitchen", timeout=15_000)
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    expect(region).to_have_text(f"Order #{order.pk}: Accepted by the kitchen", timeout=15_000)
