"""A customer with money in the wallet orders in the browser; the real relay, billing and
balance workers charge it; the tracking page and the wallet page show it."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import Page, expect

from tests.factories import WalletFactory
from tests.support import ManagedProcess, wait_until


def test_an_order_is_paid_from_the_wallet_by_the_workers(
    e2e_db, bus, run_relay, live_url: str, page: Page, customer, password, menu, tmp_path
) -> None:
    # given a customer with 20.00 in the wallet, and the workers running on this test's vhost
    WalletFactory(user=customer, balance="20.00")
    workers = [
        ManagedProcess("consume", name, log_dir=tmp_path, RABBITMQ_URL=bus)
        for name in ("balance.commands", "billing.order_placed")
    ]
    run_relay()
    try:
        page.goto(f"{live_url}/login/")
        page.get_by_label("Username").fill(customer.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()

        # when they order a pizza (11.50) and check out
        page.goto(f"{live_url}/r/{menu['pizza'].restaurant.slug}/")
        page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
        page.goto(f"{live_url}/checkout/")
        page.get_by_role("button", name=re.compile("Place order")).click()
        main = page.locator("main#main")
        order_url = page.url

        # then the workers charge it: reloading the tracking page shows it paid
        def paid() -> bool:
            page.goto(order_url)
            return main.get_attribute("data-status") == "paid"

        wait_until(paid, timeout=20, interval=0.3, what="the order to be paid")
        expect(page.locator("#order-payment")).to_contain_text("Paid €11.50 from your wallet")
        page.screenshot(path="test-artifacts/paid-order.png", full_page=True)

        # and the wallet shows the charge and the new balance
        page.goto(f"{live_url}/wallet/")
        expect(page.locator("main")).to_contain_text("8.50")
        expect(page.locator("main")).to_contain_text("Order #")
    finally:
        for worker in workers:
            worker.terminate()
    from billing.models import Wallet

    assert Wallet.objects.get(user=customer).balance == Decimal("8.50")
