"""A new customer with an empty wallet pays their first order by card in one step, at desktop
and phone size: checkout with "Pay by card", the provider's page for exactly the total, back on
the order's page paid; a declined card ends in payment_failed with "Order again" to retry.
Real daphne and Chromium; the simulated provider delivers its signed webhook."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from billing.models import Wallet
from ordering.models import Order
from tests.e2e.conftest import log_in, screenshot


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("card, status", [("4242 4242 4242 4242", "paid"), ("4000 0000 0000 0002", "payment_failed")])
def test_a_first_order_paid_by_card_in_one_step(
    e2e_db, live_url: str, page: Page, phone_page: Page, customer, password, restaurant, menu, size, card, status
) -> None:
    browser_page = page if size == "desktop" else phone_page
    outcome = "paid" if status == "paid" else "declined"
    # given a new customer with no wallet, a pizza (11.50) in the cart
    log_in(browser_page, live_url, customer.username, password, f"/r/{restaurant.slug}/")
    browser_page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
    browser_page.goto(f"{live_url}/checkout/")
    expect(browser_page.locator("#payment-wallet-balance")).to_contain_text("€0.00")

    # when they choose to pay by card and place the order
    browser_page.get_by_label("Pay by card").check()
    browser_page.get_by_label("Delivery address").fill("1 Test Lane")
    screenshot(browser_page, f"card-checkout-{size}")
    browser_page.get_by_role("button", name=re.compile("Place order")).click()

    # then the provider's page asks for exactly the total
    pay = browser_page.get_by_role("button", name=re.compile("Pay €11.50"))
    expect(pay).to_be_visible()
    browser_page.get_by_label("Card number").fill(card)
    screenshot(browser_page, f"card-provider-{outcome}-{size}")
    pay.click()

    # and back on the order's page it is paid (or failed, with a way to retry)
    main = browser_page.locator("main#main")
    expect(main).to_have_attribute("data-status", status)
    if status == "paid":
        expect(browser_page.locator("#order-payment")).to_contain_text("Paid €11.50 by card ending 4242")
    else:
        expect(
            browser_page.locator("#payment-retry").get_by_role("button", name=re.compile("Order again"))
        ).to_be_visible()
        expect(browser_page.locator(".exit-banner")).to_contain_text("another card")
    screenshot(browser_page, f"card-order-{outcome}-{size}")
    assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    order = Order.objects.get(customer=customer)
    assert order.payment_method == "card" and order.status == status
    assert not Wallet.objects.filter(user=customer).exists()  # a card order never touches the wallet
