"""An accidental "Accept" on the kitchen screen can be undone: the ticket says "Accepting… Undo"
for KITCHEN_ACCEPT_UNDO_SECONDS and the accept is sent only when they are over, so an undo sends
nothing (the order stays paid, the customer is told nothing); an accept not undone moves the
order; another screen accepting the same ticket meanwhile ends the wait without a second
accept. Real daphne, Chromium, and (for the live case) the relay, RabbitMQ, the bridge and Redis."""

from __future__ import annotations

import re
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from ordering.models import Order, OrderEvent
from ordering.services import order_transition_by_staff
from tests.e2e.conftest import log_in, screenshot
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.support import wait_until

UNDO_MS = settings.KITCHEN_ACCEPT_UNDO_SECONDS * 1000


def paid_order(**fields: Any) -> Order:
    return cast(Order, OrderFactory(paid=True, **fields))


def open_kitchen(page: Page, live_url: str, cook, password: str, restaurant) -> None:
    log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    expect(page).to_have_url(re.compile(rf"/kitchen/{restaurant.pk}/$"))
    expect(page.locator("#kds-connection")).to_have_attribute("data-state", "live")


def accepted_events(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, status="accepted").count()


def test_accept_then_undo_sends_nothing_and_accept_without_undo_moves_the_order(
    e2e_db, live_url: str, page: Page, password, restaurant, menu
) -> None:
    # given two paid orders and their kitchen's screen
    assert UNDO_MS >= 1000, "the screen is given a few seconds to undo in"
    cook = StaffMembershipFactory(restaurant=restaurant).user
    first, second = paid_order(dish=menu["pizza"]), paid_order(dish=menu["pasta"])
    open_kitchen(page, live_url, cook, password, restaurant)
    first_ticket = page.locator(f'[data-column="paid"] .ticket[data-order-id="{first.pk}"]')

    # when the cook presses Accept on the first ticket
    first_ticket.get_by_role("button", name="Accept").click()

    # then the ticket says it is accepting, with the focus on Undo, and says so to a screen reader
    expect(first_ticket).to_contain_text("Accepting…")
    undo = first_ticket.get_by_role("button", name=f"Undo accepting order {first.pk}")
    expect(undo).to_be_focused()
    expect(page.locator("#kds-pending-live")).to_have_text(re.compile(rf"Accepting order {first.pk} in \d+ seconds"))
    screenshot(page, "kitchen-accepting-undo")

    # when they undo it from the keyboard
    page.keyboard.press("Enter")

    # then the ticket is back as it was, the focus on its Accept, and it says nothing was sent
    accept = first_ticket.get_by_role("button", name="Accept")
    expect(accept).to_be_focused()
    expect(first_ticket).not_to_contain_text("Accepting…")
    expect(page.locator("#kds-pending-live")).to_have_text(f"Order {first.pk} not accepted: nothing was sent.")

    # when they accept the second ticket and let it be
    page.locator(f'.ticket[data-order-id="{second.pk}"]').get_by_role("button", name="Accept").click()

    # then, once its time is over, the second order is accepted (the first one's time ended before)
    wait_until(
        lambda: Order.objects.get(pk=second.pk).status == "accepted",
        timeout=UNDO_MS / 1000 + 10,
        interval=0.2,
        what="the second order to be accepted",
    )
    expect(page.locator(f'[data-column="accepted"] .ticket[data-order-id="{second.pk}"]')).to_be_visible()
    # and the first is still paid: no accept was ever sent for it, so no one was told
    first.refresh_from_db()
    assert first.status == "paid" and accepted_events(first) == 0
    expect(first_ticket).to_be_visible()


def test_another_screen_accepting_meanwhile_ends_the_wait_without_a_second_accept(
    e2e_db, run_bridge, live_url: str, page: Page, password, restaurant, menu
) -> None:
    # given a paid order on the kitchen screen, with the live path running
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = paid_order(dish=menu["pizza"])
    run_bridge()
    open_kitchen(page, live_url, cook, password, restaurant)
    ticket = page.locator(f'.ticket[data-order-id="{order.pk}"]')

    # when this screen's Accept is waiting out its undo time and another screen accepts the order
    ticket.get_by_role("button", name="Accept").click()
    expect(ticket).to_contain_text("Accepting…")
    until = page.evaluate(f"window.kitchenScreen.accepting[{order.pk}].until")
    order_transition_by_staff(order_id=order.pk, user=cast(User, cook), to="accepted")

    # then the ticket follows live into Accepted, and the wait is over
    expect(page.locator(f'[data-column="accepted"] .ticket[data-order-id="{order.pk}"]')).to_be_visible(timeout=15_000)
    expect(page.locator("#kds-pending-live")).to_have_text(f"Order {order.pk} was accepted on another screen.")
    # and when this screen's time would have run out, nothing more was sent: no error, one accept
    # (waits in the page until then: the site's CSP allows no string evaluation for polling)
    page.evaluate("(until) => new Promise((done) => setTimeout(done, Math.max(0, until + 1000 - Date.now())))", until)
    expect(page.locator("#kds-toast")).to_be_hidden()
    assert page.evaluate("Object.keys(window.kitchenScreen.accepting).length") == 0
    assert accepted_events(order) == 1
