"""Delivery or pick-up, a tip and ordering ahead in the browser, at desktop and phone size: the
checkout hides the address for pick-up and keeps the summary's fee, tip and total in step; a
pick-up order has no address, a delivery pays its fee and tip, an order ahead carries its time;
the kitchen screen and the pick-up board say which is which. Real daphne and Chromium."""

from __future__ import annotations

import datetime
import functools
import re
from decimal import Decimal
from typing import cast

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from ordering.models import Order, StaffMembership
from tests.e2e.conftest import log_in, screenshot
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.support import wait_until


@pytest.fixture
def shop(restaurant, menu):
    restaurant.delivery_fee, restaurant.minimum_order = Decimal("2.50"), Decimal("15.00")
    restaurant.opening_hours = {str(day): [["00:00", "00:00"]] for day in range(7)}
    restaurant.save()
    return restaurant


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_checkout_for_pickup_then_for_delivery_with_a_tip_and_a_time(
    e2e_db, live_url: str, page: Page, phone_page: Page, customer, password, shop, menu, size
) -> None:
    browser_page = page if size == "desktop" else phone_page
    log_in(browser_page, live_url, customer.username, password, f"/r/{shop.slug}/")
    # the menu says what delivery costs and that pick-up is offered
    facts = browser_page.locator(".restaurant-facts")
    expect(facts).to_contain_text("Delivery €2.50, from €15.00")
    expect(facts).to_contain_text("Pick-up")

    # given two pizzas (23.00) in the cart, at checkout
    browser_page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
    browser_page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
    browser_page.goto(f"{live_url}/checkout/")
    total = browser_page.locator("#checkout-total")
    expect(total).to_have_text("€25.50")  # delivery by default: 23.00 + 2.50

    # when they choose pick-up, the address goes and so does the fee
    browser_page.get_by_label("Pick-up at the restaurant").check()
    expect(browser_page.get_by_label("Delivery address")).to_be_hidden()
    expect(total).to_have_text("€23.00")
    # and a 15 % tip is added at once
    browser_page.get_by_label("15 %").check()
    expect(browser_page.locator("#checkout-tip")).to_have_text("€3.45")
    expect(total).to_have_text("€26.45")
    assert browser_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(browser_page, f"checkout-pickup-{size}")
    browser_page.get_by_role("button", name=re.compile("Place order")).click()

    # then the order is a pick-up, with no address, for as soon as possible
    expect(browser_page.locator("#order-handover")).to_contain_text(shop.name)
    expect(browser_page.locator("#order-when")).to_have_text("As soon as possible")
    first = Order.objects.get(customer=customer)
    assert (first.fulfilment, first.delivery_address, first.tip, first.total) == (
        "pickup",
        "",
        Decimal("3.45"),
        Decimal("26.45"),
    )

    # when they order again for delivery, with an amount of tip and a time ahead
    browser_page.goto(f"{live_url}/r/{shop.slug}/")
    for _ in range(2):
        browser_page.locator(f"#item-{menu['pizza'].pk}").get_by_role("button", name="Add to cart").click()
    browser_page.goto(f"{live_url}/checkout/")
    browser_page.get_by_label(re.compile(r"Delivery \(€2\.50\)")).check()
    browser_page.get_by_label("Delivery address").fill("7 Harbour Street")
    browser_page.get_by_label("Other amount").check()
    browser_page.get_by_label("Tip amount").fill("2")
    expect(browser_page.locator("#checkout-total")).to_have_text("€27.50")
    when = browser_page.get_by_label("When")
    option = when.locator("option").nth(8)  # two hours' worth of quarter hours ahead, or so
    when.select_option(value=option.get_attribute("value"))
    screenshot(browser_page, f"checkout-delivery-ahead-{size}")
    browser_page.get_by_role("button", name=re.compile("Place order")).click()

    # then it is a delivery for that time, with its fee and tip on the order page
    expect(browser_page.locator("#order-when")).to_contain_text("For ")
    expect(browser_page.locator("#order-delivery-fee")).to_have_text("€2.50")
    expect(browser_page.locator("#order-tip")).to_have_text("€2.00")
    second = Order.objects.filter(customer=customer).latest("pk")
    assert (second.fulfilment, second.delivery_address, second.total) == (
        "delivery",
        "7 Harbour Street",
        Decimal("27.50"),
    )
    assert second.scheduled_for is not None and second.scheduled_for > timezone.now()
    screenshot(browser_page, f"order-delivery-ahead-{size}")


def test_the_kitchen_and_the_board_say_pickup_or_delivery_and_the_time(
    e2e_db, live_url: str, page: Page, password, shop, menu
) -> None:
    when = (timezone.now() + datetime.timedelta(hours=3)).replace(second=0, microsecond=0)
    when += datetime.timedelta(minutes=(15 - when.minute % 15) % 15)
    pickup = cast(Order, OrderFactory(paid=True, items=[(menu["pizza"], 2)], fulfilment="pickup"))
    ahead = cast(Order, OrderFactory(paid=True, items=[(menu["pizza"], 2)], scheduled_for=when))
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=shop)).user
    log_in(page, live_url, cook.username, password, f"/kitchen/{shop.pk}/")
    expect(page.locator("#kds-connection")).to_have_attribute("data-state", "live")

    pickup_ticket = page.locator(f'.ticket[data-order-id="{pickup.pk}"]')
    ahead_ticket = page.locator(f'.ticket[data-order-id="{ahead.pk}"]')
    expect(pickup_ticket.locator(".ticket-handover")).to_have_text("Pick-up")
    expect(ahead_ticket.locator(".ticket-handover")).to_have_text("Delivery")
    local = timezone.localtime(when)
    expect(ahead_ticket.locator(".ticket-slot")).to_have_text(f"for {local:%H:%M}")
    expect(pickup_ticket.locator(".ticket-slot")).to_have_count(0)
    screenshot(page, "kitchen-pickup-and-ahead")

    # the board, once the kitchen has them: the delivery one is for a courier
    for order in (pickup, ahead):
        page.locator(f'.ticket[data-order-id="{order.pk}"]').get_by_role("button", name="Accept").click()

    def accepted(order: Order) -> bool:
        return Order.objects.get(pk=order.pk).status == "accepted"

    for order in (pickup, ahead):
        wait_until(functools.partial(accepted, order), timeout=30, what="the accept (after its undo time)")
    board = page.context.new_page()
    board.goto(f"{live_url}/r/{shop.slug}/board/")
    expect(board.locator(f'[data-order-id="{ahead.pk}"]')).to_contain_text("Courier")
    expect(board.locator(f'[data-order-id="{pickup.pk}"]')).not_to_contain_text("Courier")
    screenshot(board, "board-pickup-and-courier")
