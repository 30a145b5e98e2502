"""A new customer signs up, orders two dishes, and lands on the order's tracking page."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import Page, expect

from ordering.models import Order


def test_new_customer_signs_up_orders_two_dishes_and_sees_them_tracked(e2e_db, live_url: str, page: Page, menu) -> None:
    # given a restaurant with a menu, and a visitor on the home page
    page.goto(f"{live_url}/")
    page.get_by_role("link", name="Sign up").first.click()

    # when they sign up
    page.get_by_label("Username").fill("hungry-hannah")
    page.get_by_label("Email").fill("hannah@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-secret-phrase")
    page.get_by_label("Confirm password").fill("a-long-secret-phrase")
    page.get_by_role("button", name="Create account").click()

    # and add two pizzas and one pasta from the restaurant's menu
    page.get_by_role("link", name=re.compile("Casa Test")).first.click()
    pizza = page.locator(f"#item-{menu['pizza'].pk}")
    pizza.get_by_label("Quantity of Pizza").fill("2")
    pizza.get_by_role("button", name="Add to cart").click()
    page.locator(f"#item-{menu['pasta'].pk}").get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-count")).to_have_attribute("data-cart-count", "3")

    # and check out
    page.locator("a.nav-cart").click()
    expect(page.locator("#cart-total")).to_contain_text("32.25")
    page.get_by_role("link", name="Checkout").click()
    page.get_by_label("Delivery address").fill("7 Harbour Road, Springfield")
    page.get_by_role("button", name=re.compile("Place order")).click()

    # then the tracking page shows the order with both dishes and the server's total
    main = page.locator("main#main")
    expect(main).to_have_attribute("data-status", "pending_payment")
    expect(page.locator("#order-status")).to_be_visible()
    expect(page.locator("#order-total")).to_contain_text("32.25")
    expect(main).to_contain_text("Pizza")
    expect(main).to_contain_text("Pasta")
    order = Order.objects.get()
    assert page.url.endswith(f"/orders/{order.pk}/")
    assert order.customer.username == "hungry-hannah"
    assert order.total == Decimal("32.25")
    assert sorted(order.lines.values_list("name", "quantity")) == [("Pasta", 1), ("Pizza", 2)]
    page.screenshot(path="test-artifacts/tracking-page.png", full_page=True)
