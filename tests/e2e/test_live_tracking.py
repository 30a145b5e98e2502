"""The tracking page follows the order live, without reloading, and catches up after the
network drops: real daphne, relay, bridge, RabbitMQ, Redis and Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ordering.services import order_transition, order_transition_by_staff
from ordering.status import Actor
from tests.e2e.conftest import log_in
from tests.factories import OrderFactory, StaffMembershipFactory


def test_the_tracking_page_updates_live_and_catches_up_after_a_drop(
    e2e_db, run_bridge, live_url: str, page: Page, customer, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    run_bridge()
    log_in(page, live_url, customer.username, password, f"/orders/{order.pk}/")
    main = page.locator("main#main")
    expect(main).to_have_attribute("data-status", "pending_payment")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    # when the order is paid and accepted
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")

    # then the page shows it without a reload
    expect(main).to_have_attribute("data-status", "accepted", timeout=10_000)
    expect(page.locator("#order-status")).to_have_text("Accepted by the kitchen")
    assert page.evaluate("window.__sameDocument === true")

    # when the network drops while the kitchen moves on, and comes back
    # (Chromium's offline emulation blocks new connections but may leave an open
    # WebSocket up, so the test also drops the open one, as a real network loss would.)
    page.context.set_offline(True)
    page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    order_transition_by_staff(order_id=order.pk, user=cook, to="preparing")
    order_transition_by_staff(order_id=order.pk, user=cook, to="ready")
    page.context.set_offline(False)

    # then it catches up, still without a reload
    expect(main).to_have_attribute("data-status", "ready", timeout=20_000)
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__sameDocument === true")
    assert list(
        main.locator("ol[data-timeline] li[data-version]").evaluate_all(
            "items => items.map(i => Number(i.dataset.version))"
        )
    ) == [1, 2, 3, 4, 5]
    page.screenshot(path="test-artifacts/live-tracking.png", full_page=True)
