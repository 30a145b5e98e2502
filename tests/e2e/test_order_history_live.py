"""The order history follows each order's status live over the customer's own socket
(/ws/me/), without a reload, and catches up after the connection drops: real daphne, relay,
bridge, RabbitMQ, Redis and Chromium. Both with browser notifications on (the history shares
the notifications' socket) and off (it opens its own)."""

from __future__ import annotations

from typing import cast

import pytest
from playwright.sync_api import Page, expect

from ordering.models import Order, StaffMembership
from ordering.services import order_cancel, order_transition_by_staff
from tests.e2e.conftest import log_in, screenshot
from tests.factories import OrderFactory, StaffMembershipFactory

LIVE = 15_000  # ms: outbox → RabbitMQ → bridge → Redis → daphne → page → a fetch of the page


@pytest.mark.parametrize("notify_push", [True, False], ids=["shared-socket", "own-socket"])
def test_the_order_history_updates_live_and_catches_up_after_a_drop(
    e2e_db, run_bridge, live_url: str, page: Page, customer, password, restaurant, menu, notify_push
) -> None:
    # given two orders of the customer, and the history page open
    customer.profile.notify_push = notify_push
    customer.profile.save()
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    watched = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"], paid=True))
    other = cast(Order, OrderFactory(customer=customer, dish=menu["pasta"], paid=True))
    run_bridge()
    log_in(page, live_url, customer.username, password, "/orders/")
    row = page.locator(f'li[data-order-id="{watched.pk}"]')
    badge = row.locator("[data-status-badge]")
    expect(badge).to_have_text("Paid, waiting for the kitchen")
    page.evaluate("window.__sameDocument = true")

    # when the kitchen accepts the order
    order_transition_by_staff(order_id=watched.pk, user=cook, to="accepted")

    # then its row says so without a reload, and the live region tells a screen reader
    expect(row).to_have_attribute("data-status", "accepted", timeout=LIVE)
    expect(badge).to_have_text("Accepted by the kitchen")
    expect(badge).to_have_class("status-badge tone-info")
    expect(page.locator("#orders-live")).to_contain_text(f"order #{watched.pk}: Accepted by the kitchen")
    expect(page.locator(f'li[data-order-id="{other.pk}"]')).to_have_attribute("data-status", "paid")
    assert page.evaluate("window.__sameDocument === true")

    # when the connection drops while the kitchen moves on, and comes back
    page.context.set_offline(True)
    page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
    order_transition_by_staff(order_id=watched.pk, user=cook, to="preparing")
    order_cancel(order_id=other.pk, customer=customer)
    page.context.set_offline(False)

    # then both rows catch up, still without a reload
    expect(row).to_have_attribute("data-status", "preparing", timeout=LIVE)
    expect(page.locator(f'li[data-order-id="{other.pk}"]')).to_have_attribute("data-status", "cancelled", timeout=LIVE)
    assert page.evaluate("window.__sameDocument === true")
    screenshot(page, f"order-history-live-{'shared' if notify_push else 'own'}-socket")
