"""A customer's order of food and drinks is paid by the real workers; the customer opens its
receipt from the order page (desktop and phone), sees the VAT by rate, and downloads the PDF."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import cast

import pytest
from playwright.sync_api import Page, expect

from ordering.models import Order
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.test_accessibility import violations
from tests.factories import MenuCategoryFactory, MenuItemFactory, OrderFactory, WalletFactory
from tests.support import ManagedProcess, wait_until


@pytest.fixture
def food_and_drinks(restaurant):
    """A curry at 7 % VAT and a lemonade at 19 %."""
    restaurant.address = "4 Harbour Road, Springfield"
    restaurant.save()
    return {
        "curry": MenuItemFactory(
            category=MenuCategoryFactory(restaurant=restaurant, name="Mains"),
            name="Green curry",
            price=Decimal("10.50"),
            vat_rate=Decimal("7.00"),
        ),
        "lemonade": MenuItemFactory(
            category=MenuCategoryFactory(restaurant=restaurant, name="Drinks"),
            name="Lemonade",
            price=Decimal("3.90"),
            vat_rate=Decimal("19.00"),
        ),
    }


def fits_and_is_accessible(page: Page) -> None:
    """No serious axe-core violation, and no sideways scrolling."""
    assert violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), page.url


def expect_vat_table(page: Page) -> None:
    vat = page.locator("#receipt-vat")
    expect(vat.locator("tr[data-rate='7.00']")).to_contain_text("€19.63")
    expect(vat.locator("tr[data-rate='7.00']")).to_contain_text("€1.37")
    expect(vat.locator("tr[data-rate='19.00']")).to_contain_text("€6.55")
    expect(vat.locator("tr[data-rate='19.00']")).to_contain_text("€1.25")
    expect(vat.locator("tfoot")).to_contain_text("€2.62")
    expect(vat.locator("tfoot")).to_contain_text("€28.80")


def test_a_customer_opens_the_receipt_of_a_paid_order_and_downloads_the_pdf(
    e2e_db, bus, run_relay, live_url: str, page: Page, phone_page: Page, customer, password, food_and_drinks, tmp_path
) -> None:
    # given a customer with money in the wallet, and the paying workers running
    WalletFactory(user=customer, balance="50.00")
    workers = [
        ManagedProcess("consume", name, log_dir=tmp_path, RABBITMQ_URL=bus)
        for name in ("balance.commands", "billing.order_placed")
    ]
    run_relay()
    try:
        # when they order two curries and two lemonades
        log_in(page, live_url, customer.username, password)
        page.goto(f"{live_url}/r/{food_and_drinks['curry'].restaurant.slug}/")
        for dish in ("curry", "lemonade"):
            item = page.locator(f"#item-{food_and_drinks[dish].pk}")
            item.get_by_label(re.compile("Quantity of")).fill("2")
            item.get_by_role("button", name="Add to cart").click()
        expect(page.locator("#cart-count")).to_have_attribute("data-cart-count", "4")
        page.goto(f"{live_url}/checkout/")
        page.get_by_role("button", name=re.compile("Place order")).click()
        expect(page.locator("main#main")).to_have_attribute("data-status", re.compile("pending_payment|paid"))
        order_url = page.url
        found = re.search(r"/orders/(\d+)/", order_url)
        assert found, order_url
        order_id = int(found.group(1))

        # and the workers charge it
        def paid() -> bool:
            page.goto(order_url)
            return page.locator("main#main").get_attribute("data-status") == "paid"

        wait_until(paid, timeout=20, interval=0.3, what="the order to be paid")

        # then the order page links to its receipt, which shows the lines and the VAT by rate
        page.get_by_role("link", name="View receipt").click()
        expect(page).to_have_url(f"{live_url}/orders/{order_id}/receipt/")
        expect(page.locator("#receipt-number")).to_have_text(f"#{order_id}")
        expect(page.locator("#receipt")).to_contain_text("4 Harbour Road, Springfield")
        expect(page.locator("#receipt-method")).to_have_text("Passline wallet")
        expect(page.locator("#receipt-lines")).to_contain_text("Green curry")
        expect(page.locator("#receipt-lines")).to_contain_text("19.00%")
        expect(page.locator("#receipt-total")).to_have_text("€28.80")
        expect_vat_table(page)
        fits_and_is_accessible(page)
        screenshot(page, "receipt-desktop")

        # and printed, it is the receipt alone: no navigation, no buttons
        page.emulate_media(media="print")
        expect(page.locator(".site-header")).to_be_hidden()
        expect(page.locator("#receipt-pdf")).to_be_hidden()
        expect(page.locator("#receipt-vat")).to_be_visible()
        screenshot(page, "receipt-print")
        page.emulate_media(media="screen")

        # and the PDF downloads as an attachment
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Download PDF").click()
        download = download_info.value
        assert download.suggested_filename == f"passline-receipt-{order_id}.pdf"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF-")

        # and on a phone the same receipt fits the screen
        log_in(phone_page, live_url, customer.username, password, next_path=f"/orders/{order_id}/")
        expect(phone_page.locator("main#main")).to_have_attribute("data-status", "paid")
        phone_page.get_by_role("link", name="View receipt").click()
        expect(phone_page.locator("#receipt-number")).to_have_text(f"#{order_id}")
        expect_vat_table(phone_page)
        fits_and_is_accessible(phone_page)
        for part in ("#receipt", "#receipt-lines", "#receipt-total", "#receipt-vat", "#receipt-pdf"):
            box = phone_page.locator(part).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
        screenshot(phone_page, "receipt-phone")

        # and the order history links to the receipt too
        phone_page.goto(f"{live_url}/orders/")
        receipt_link = phone_page.get_by_role("link", name=f"Receipt for order #{order_id}")
        expect(receipt_link).to_be_visible()
        screenshot(phone_page, "order-history-receipt-phone")
        receipt_link.click()
        expect(phone_page).to_have_url(f"{live_url}/orders/{order_id}/receipt/")
    finally:
        for worker in workers:
            worker.terminate()


def test_the_order_history_shows_the_receipt_link_once_the_order_is_paid_without_a_reload(
    e2e_db, run_bridge, live_url: str, page: Page, customer, password, food_and_drinks
) -> None:
    # given an order waiting for its payment, and the customer's order history open
    order = cast(Order, OrderFactory(customer=customer, items=[(food_and_drinks["curry"], 1)]))
    run_bridge()
    log_in(page, live_url, customer.username, password, "/orders/")
    row = page.locator(f'li[data-order-id="{order.pk}"]')
    expect(row).to_have_attribute("data-status", "pending_payment")
    expect(row.locator(".order-row-receipt")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")
    # when it is paid
    order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
    # then its row links to the receipt, still on the same page
    expect(row).to_have_attribute("data-status", "paid", timeout=15_000)
    expect(row.get_by_role("link", name=f"Receipt for order #{order.pk}")).to_be_visible()
    assert page.evaluate("window.__sameDocument === true")
