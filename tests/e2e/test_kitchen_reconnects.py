"""A kitchen tablet on bad Wi-Fi: the screen loses its connection again and again while orders
keep coming, and each time it comes back it shows exactly the database's tickets, with one
socket open, never a pile of half-dead ones. Also the public pick-up board, live."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ordering.models import Order
from ordering.services import order_cancel, order_transition_by_staff
from ordering.status import KITCHEN_OPEN
from tests.e2e.conftest import log_in
from tests.factories import OrderFactory, StaffMembershipFactory

# Counts the sockets the page opens, to show it keeps one, not one more per reconnect.
COUNT_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  const opened = window.__sockets = [];
  function Counted(url, protocols) {
    const socket = protocols === undefined ? new Native(url) : new Native(url, protocols);
    opened.push(socket);
    return socket;
  }
  Counted.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach((name) => { Counted[name] = Native[name]; });
  window.WebSocket = Counted;
})();
"""
DROPS = 12


def test_the_kitchen_screen_survives_many_drops_with_one_socket(
    e2e_db, run_bridge, live_url: str, page: Page, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory(restaurant=restaurant).user
    run_bridge()
    page.add_init_script(COUNT_SOCKETS)
    log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    state = page.locator("#kds-connection")
    expect(state).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")
    orders = [OrderFactory(dish=menu["pizza"], paid=True)]

    for drop in range(DROPS):
        # when the Wi-Fi goes while the kitchen's other screen and the customers move on
        page.context.set_offline(True)
        page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
        expect(state).to_have_attribute("data-state", "reconnecting")
        orders.append(OrderFactory(dish=menu["pizza"], paid=True))
        order_transition_by_staff(order_id=orders[drop].pk, user=cook, to="accepted" if drop % 2 == 0 else "rejected")
        page.context.set_offline(False)

        # then it comes back and shows exactly the open tickets, in their columns
        expect(state).to_have_attribute("data-state", "live", timeout=20_000)
        expected = {
            (o.pk, o.status)
            for o in Order.objects.filter(restaurant=restaurant, status__in=[s.value for s in KITCHEN_OPEN])
        }
        shown = page.locator("[data-column]:not([data-column='done']) .ticket")
        expect(shown).to_have_count(len(expected))
        assert {
            (int(i), s) for i, s in shown.evaluate_all("cards => cards.map(c => [c.dataset.orderId, c.dataset.status])")
        } == expected

    # one socket open, every earlier one closed; the page never reloaded
    assert page.evaluate("window.__sockets.filter(s => s.readyState === WebSocket.OPEN).length") == 1
    assert page.evaluate("window.__sockets.length") >= DROPS + 1  # (more if a retry fell in a drop)
    assert page.evaluate("window.__sameDocument === true")
    # the rejected ones sit in Done, where the kitchen sees what it closed
    expect(page.locator("[data-column='done'] .ticket.is-rejected")).to_have_count(DROPS // 2)


def test_the_pickup_board_shows_numbers_moving_live(
    e2e_db, run_bridge, live_url: str, page: Page, restaurant, menu
) -> None:
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(dish=menu["pizza"], paid=True)
    run_bridge()
    # a public screen, nobody logged in
    page.goto(f"{live_url}/r/{restaurant.slug}/board/")
    preparing = page.locator('[data-column="preparing"]')
    ready = page.locator('[data-column="ready"]')
    number = f'[data-order-id="{order.pk}"]'
    expect(preparing.locator(number)).to_have_count(0)

    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    # a delivery: its number, marked for the courier
    expect(preparing.locator(number)).to_have_text(f"#{order.pk} Courier", timeout=10_000)
    order_transition_by_staff(order_id=order.pk, user=cook, to="preparing")
    order_transition_by_staff(order_id=order.pk, user=cook, to="ready")
    expect(ready.locator(number)).to_have_text(f"#{order.pk} Courier", timeout=10_000)
    expect(preparing.locator(number)).to_have_count(0)
    page.screenshot(path="test-artifacts/pickup-board.png", full_page=True)
    # no personal data on a public screen
    assert order.customer.username not in page.content() and "Test Lane" not in page.content()

    order_transition_by_staff(order_id=order.pk, user=cook, to="delivered")
    expect(ready.locator(number)).to_have_count(0, timeout=10_000)


def test_a_ticket_the_customer_cancels_leaves_with_a_notice(
    e2e_db, run_bridge, live_url: str, page: Page, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(dish=menu["pizza"], paid=True)
    run_bridge()
    log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    expect(page.locator(f'[data-column="paid"] [data-order-id="{order.pk}"]')).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-alerting", "true")

    order_cancel(order_id=order.pk, customer=order.customer)

    expect(page.locator("#kds-toast")).to_have_text(f"Order #{order.pk} was cancelled by the customer.", timeout=10_000)
    expect(page.locator(f'[data-column="done"] .ticket.is-cancelled[data-order-id="{order.pk}"]')).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-alerting", "false")  # nothing left to acknowledge
