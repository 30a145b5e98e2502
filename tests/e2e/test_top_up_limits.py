"""Top-up limits in the browser, at desktop and phone size: an amount over the confirmation
threshold is shown back once before it goes to the provider, "Change the amount" keeps it, the
confirmed top-up is paid on the simulated provider's page and credited by the real workers, and a
top-up past the daily cap is refused with one error that says what is left. Real daphne, relay,
bridge, billing and balance workers, RabbitMQ, Redis and Chromium."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from billing.models import TopUp, Wallet
from tests.e2e.conftest import log_in, screenshot
from tests.support import ManagedProcess


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_large_top_up_is_confirmed_once_and_the_daily_cap_is_one_clear_error(
    e2e_db, bus, run_bridge, live_url: str, page: Page, phone_page: Page, customer, password, tmp_path, size, settings
) -> None:
    browser_page = page if size == "desktop" else phone_page
    # the defaults: confirm above 500.00, at most 2,000.00 a day
    assert settings.TOP_UP_CONFIRM_ABOVE == Decimal("500.00")
    assert settings.TOP_UP_DAILY_LIMIT == Decimal("2000.00")
    workers = [
        ManagedProcess("consume", name, log_dir=tmp_path, RABBITMQ_URL=bus)
        for name in ("balance.commands", "billing.top_ups")
    ]
    run_bridge()
    try:
        log_in(browser_page, live_url, customer.username, password, "/wallet/")
        main = browser_page.locator("main")

        # when they ask for 600.00, over the confirmation threshold
        browser_page.get_by_label("Amount").fill("600")
        browser_page.get_by_role("button", name="Continue to payment").click()

        # then it is shown back, nothing is started yet, and "Change the amount" keeps 600
        confirm = browser_page.locator("#top-up-confirm")
        expect(confirm).to_contain_text("Add €600.00 to your wallet?")
        assert not TopUp.objects.filter(user=customer).exists()
        assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(browser_page, f"top-up-confirm-{size}")
        confirm.get_by_role("link", name="Change the amount").click()
        expect(browser_page.get_by_label("Amount")).to_have_value("600.00")
        browser_page.get_by_role("button", name="Continue to payment").click()

        # when they confirm and pay on the provider's page
        browser_page.locator("#top-up-confirm").get_by_role("button", name="Yes, add €600.00").click()
        browser_page.get_by_label("Card number").fill("4242424242424242", timeout=20_000)
        browser_page.get_by_role("button", name=re.compile("Pay")).click()

        # then the wallet has it, from one top-up
        expect(browser_page.locator(".alert-success")).to_contain_text("Added €600.00", timeout=20_000)
        expect(browser_page.locator("#wallet-balance")).to_have_text("€600.00")
        assert TopUp.objects.filter(user=customer).count() == 1

        # when they then ask for 1,500.00 more the same day (2,100.00 in all)
        browser_page.get_by_label("Amount").fill("1500")
        browser_page.get_by_role("button", name="Continue to payment").click()

        # then one error names the cap and what is left, and the form keeps the amount
        expect(main).to_contain_text("You can top up at most €2,000.00 a day. €1,400.00 is left today.")
        assert main.inner_text().count("You can top up at most") == 1
        expect(browser_page.get_by_label("Amount")).to_have_value("1500")
        expect(browser_page.locator("#top-up-confirm")).to_have_count(0)
        screenshot(browser_page, f"top-up-daily-cap-{size}")
    finally:
        for worker in workers:
            worker.terminate()
    assert TopUp.objects.filter(user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("600.00")
