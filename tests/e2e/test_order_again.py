"""Order again, in the browser: from the order history at desktop and phone size, and after a
failed payment (which the tracking page shows live), through a wallet top-up on the simulated
provider's page, back to the order, its dishes back in the cart, and paid this time. Real
daphne, relay, bridge, balance and billing workers, RabbitMQ, Redis and Chromium."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from billing.models import Wallet
from ordering.models import Order
from tests.e2e.conftest import log_in, screenshot
from tests.factories import OrderFactory, WalletFactory
from tests.support import ManagedProcess


def place(**fields: Any) -> Order:
    """An order placed through ``order_place`` (tests.factories.OrderFactory)."""
    return cast(Order, OrderFactory(**fields))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_order_again_from_the_history_fills_the_cart_and_names_what_is_gone(
    e2e_db, live_url: str, page: Page, phone_page: Page, customer, password, menu, size
) -> None:
    # given an earlier order of two pizzas and a pasta, and the pasta is off the menu today
    browser_page = page if size == "desktop" else phone_page
    order = place(customer=customer, items=[(menu["pizza"], 2), (menu["pasta"], 1)])
    menu["pasta"].is_available = False
    menu["pasta"].save()
    log_in(browser_page, live_url, customer.username, password, "/orders/")

    # when they press "Order again" on its row of the history
    row = browser_page.locator(f'li.order-row[data-order-id="{order.pk}"]')
    button = row.get_by_role("button", name=f"Order again: order #{order.pk} from {menu['pizza'].restaurant.name}")
    expect(button).to_be_visible()
    screenshot(browser_page, f"order-history-{size}")
    button.click()

    # then the cart holds the two pizzas, and the page says the pasta was left out
    expect(browser_page).to_have_url(f"{live_url}/cart/")
    expect(browser_page.locator(f"#cart-qty-{menu['pizza'].pk}")).to_have_value("2")
    expect(browser_page.locator(f"#cart-qty-{menu['pasta'].pk}")).to_have_count(0)
    expect(browser_page.get_by_role("alert")).to_contain_text("Pasta is not available any more and was left out.")
    expect(browser_page.locator("main")).to_contain_text("€23.00")
    # and nothing scrolls sideways, at either size
    assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(browser_page, f"order-again-cart-{size}")


def test_a_failed_payment_then_a_top_up_and_order_again_pays(
    e2e_db, bus, run_bridge, live_url: str, page: Page, customer, password, menu, tmp_path
) -> None:
    # given a customer with 5.00 in the wallet, and the workers on this test's vhost
    WalletFactory(user=customer, balance="5.00")
    workers = [
        ManagedProcess("consume", name, log_dir=tmp_path, RABBITMQ_URL=bus)
        for name in ("balance.commands", "billing.order_placed", "billing.top_ups")
    ]
    run_bridge()
    try:
        log_in(page, live_url, customer.username, password, f"/r/{menu['pizza'].restaurant.slug}/")
        # when they order a pizza (11.50) they cannot pay for
        page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
        page.goto(f"{live_url}/checkout/")
        page.get_by_role("button", name=re.compile("Place order")).click()
        main = page.locator("main#main")
        expect(main).to_have_attribute("data-order-id", re.compile(r"\d+"))
        order_url = page.url
        page.evaluate("window.__sameDocument = true")

        # then the failure arrives live, with the reason and both ways on, without a reload
        # (the workers are processes just started: on a busy machine they take a while to consume)
        expect(main).to_have_attribute("data-status", "payment_failed", timeout=45_000)
        expect(page.locator(".exit-banner")).to_contain_text("The payment did not go through")
        retry = page.locator("#payment-retry")
        expect(retry.get_by_role("link", name="Top up and try again")).to_be_visible()
        expect(retry.get_by_role("button", name=re.compile("^Order again"))).to_be_visible()
        assert page.evaluate("window.__sameDocument === true")
        expect(page.locator("#order-status-live")).to_contain_text("You can top up and try again, or order again.")
        screenshot(page, "payment-failed-live")

        # when they top up the shortfall on the provider's page
        retry.get_by_role("link", name="Top up and try again").click()
        expect(page.get_by_label("Amount")).to_have_value("6.50")
        page.get_by_role("button", name="Continue to payment").click()
        page.get_by_label("Card number").fill("4242424242424242", timeout=20_000)
        page.get_by_role("button", name=re.compile("Pay")).click()

        # then they are back on the order, with the money, and order it again
        expect(page).to_have_url(order_url, timeout=20_000)
        expect(page.locator(".alert-success")).to_contain_text("Added €6.50 to your wallet")
        page.locator("#payment-retry").get_by_role("button", name=re.compile("^Order again")).click()
        expect(page).to_have_url(f"{live_url}/cart/")
        expect(page.locator(f"#cart-qty-{menu['pizza'].pk}")).to_have_value("1")
        page.goto(f"{live_url}/checkout/")
        page.get_by_role("button", name=re.compile("Place order")).click()

        # and this time it is paid
        expect(page.locator("main#main")).to_have_attribute("data-status", "paid", timeout=20_000)
        screenshot(page, "order-again-paid")
    finally:
        for worker in workers:
            worker.terminate()
    statuses = list(Order.objects.filter(customer=customer).order_by("pk").values_list("status", flat=True))
    assert statuses == ["payment_failed", "paid"]
    assert Wallet.objects.get(user=customer).balance == Decimal("0.00")
