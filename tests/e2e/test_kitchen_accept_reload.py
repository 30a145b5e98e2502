"""A waiting "Accept" on the kitchen screen is not lost when the page goes: a reload during the
undo time sends it at once (pagehide, fetch keepalive), and a page that died without sending
leaves it in sessionStorage for the next page of the tab, which resumes its undo time or sends
it. Real daphne and Chromium."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from ordering.models import Order
from tests.e2e.conftest import screenshot
from tests.e2e.test_kitchen_undo_accept import UNDO_MS, accepted_events, open_kitchen, paid_order
from tests.factories import StaffMembershipFactory
from tests.support import wait_until


def _leave_behind(page: Page, restaurant_id: int, order_id: int, until_ms_from_now: int, sent: bool) -> None:
    """What a page that died in the middle of the undo time (no pagehide) leaves in the tab."""
    page.evaluate(
        """([key, id, inMs, sent]) => sessionStorage.setItem(key, JSON.stringify(
               {[id]: {until: Date.now() + inMs, sent: sent}}))""",
        [f"passline:kitchen:{restaurant_id}:accepting", order_id, until_ms_from_now, sent],
    )


def test_a_reload_during_the_undo_time_accepts_the_order_once(
    e2e_db, live_url: str, page: Page, password, restaurant, menu
) -> None:
    # given a cook who pressed Accept on a paid order
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    order = paid_order(dish=menu["pizza"])
    open_kitchen(page, live_url, cook, password, restaurant)
    ticket = page.locator(f'.ticket[data-order-id="{order.pk}"]')
    ticket.get_by_role("button", name="Accept").click()
    expect(ticket).to_contain_text("Accepting…")
    pressed = time.monotonic()

    # when the page is reloaded before the undo time is over
    page.reload()

    # then the accept was sent as the page went, not dropped: accepted once, before its time
    wait_until(lambda: Order.objects.get(pk=order.pk).status == "accepted", timeout=10, what="the accept")
    assert time.monotonic() - pressed < UNDO_MS / 1000, "sent on leaving, not when the time ran out"
    expect(page.locator(f'[data-column="accepted"] .ticket[data-order-id="{order.pk}"]')).to_be_visible()
    page.wait_for_timeout(UNDO_MS + 500)  # the reloaded page sends no second accept, shows no error
    expect(page.locator("#kds-toast")).to_be_hidden()
    assert accepted_events(order) == 1
    assert page.evaluate("sessionStorage.length") == 0
    screenshot(page, "kitchen-accept-after-reload")


def test_an_accept_left_by_a_page_that_died_resumes_its_undo_time_or_is_sent(
    e2e_db, live_url: str, phone_page: Page, password, restaurant, menu
) -> None:
    page = phone_page
    cook = StaffMembershipFactory.create(restaurant=restaurant).user
    waiting, overdue, landed = (paid_order(dish=menu["pizza"]) for _ in range(3))
    open_kitchen(page, live_url, cook, password, restaurant)

    # given a page that died during the undo time of the first order: the next page resumes it
    _leave_behind(page, restaurant.pk, waiting.pk, UNDO_MS, sent=False)
    page.reload()
    ticket = page.locator(f'.ticket[data-order-id="{waiting.pk}"]')
    expect(ticket).to_contain_text("Accepting…")
    expect(page.locator("#kds-pending-live")).to_have_text(re.compile(rf"Accepting order {waiting.pk} in \d+ seconds"))
    screenshot(page, "kitchen-accept-resumed-after-reload-phone")
    # and its Undo still works: nothing is ever sent
    ticket.get_by_role("button", name=f"Undo accepting order {waiting.pk}").click()
    expect(ticket).not_to_contain_text("Accepting…")

    # given one whose time ran out while the page was gone: sent as soon as the page is back
    _leave_behind(page, restaurant.pk, overdue.pk, -1000, sent=False)
    page.reload()
    wait_until(lambda: Order.objects.get(pk=overdue.pk).status == "accepted", timeout=10, what="the overdue accept")

    # given one sent as the page went that had landed already: sent again, a quiet 409
    order_transition_to_accepted = page.evaluate(
        """(id) => fetch(`/api/v1/kitchen/orders/${id}/transition`, {method: "POST", credentials: "same-origin",
               headers: {"Content-Type": "application/json",
                         "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content},
               body: JSON.stringify({to: "accepted"})}).then((r) => r.status)""",
        landed.pk,
    )
    assert order_transition_to_accepted == 200
    _leave_behind(page, restaurant.pk, landed.pk, -1000, sent=True)
    page.reload()
    expect(page.locator(f'[data-column="accepted"] .ticket[data-order-id="{landed.pk}"]')).to_be_visible()
    page.wait_for_timeout(1000)
    expect(page.locator("#kds-toast")).to_be_hidden()

    # then: the undone order is still paid, each other one accepted exactly once
    page.wait_for_timeout(UNDO_MS)
    waiting.refresh_from_db()
    assert waiting.status == "paid" and accepted_events(waiting) == 0
    assert accepted_events(overdue) == 1 and accepted_events(landed) == 1
