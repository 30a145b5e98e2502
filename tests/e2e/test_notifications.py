"""In-browser notifications in Chromium: a toast on any page of the site when the order moves
on, none on the order's own tracking page, and no email for a step the customer watched
there: real daphne, relay, notifier, RabbitMQ, Redis and Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from notifications.models import Notification
from ordering.services import order_transition, order_transition_by_staff
from ordering.status import Actor
from tests.e2e.conftest import log_in
from tests.factories import OrderFactory, StaffMembershipFactory, verified
from tests.support import wait_until


def test_a_toast_on_any_page_and_no_email_for_what_the_tracking_page_shows(
    e2e_db, run_bridge, run_consumers, live_url: str, page: Page, customer, password, restaurant, menu
) -> None:
    from consumers.notifier import notifier_email, notifier_plan, notifier_push

    cook = StaffMembershipFactory(restaurant=restaurant).user
    verified(customer)  # emails go only to verified addresses
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    run_bridge()
    run_consumers(notifier_plan, notifier_push, notifier_email)
    # given: the customer is on the list of restaurants, not on the order's page, and its
    # notifications socket is open (a step planned with no page open gets no toast)
    log_in(page, live_url, customer.username, password, "/")
    wait_until(lambda: _online(customer.pk), what="the page's notifications socket")
    # when: the order is paid
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    # then: a toast says so, linking to the order
    toast = page.locator("#notifications .toast[data-message='order_paid']")
    expect(toast).to_contain_text(f"Order #{order.pk} is paid", timeout=15_000)
    assert toast.get_attribute("href") == f"/orders/{order.pk}/"
    page.screenshot(path="test-artifacts/notification-toast.png")
    wait_until(
        lambda: Notification.objects.filter(order=order, message="order_paid", channel="email", status="sent").exists(),
        what="the paid email",
    )

    # when: the customer follows it to the tracking page, and the kitchen accepts the order
    toast.click()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    wait_until(lambda: _watched(order.pk), what="the page to report that it is watched")
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
    expect(page.locator("main#main")).to_have_attribute("data-status", "accepted", timeout=15_000)
    wait_until(
        lambda: (
            Notification.objects.filter(order=order, message="order_accepted").count() == 2
            and not Notification.objects.filter(order=order, status="pending").exists()
        ),
        what="the accepted step's notifications",
    )
    # then: no email for the step the customer saw happen, and no toast over the page
    # that shows it (the toast went to the page, which showed the change itself)
    email = Notification.objects.get(order=order, message="order_accepted", channel="email")
    assert (email.status, email.reason) == ("skipped", "watching the order live")
    assert Notification.objects.get(order=order, message="order_accepted", channel="push").status == "sent"
    expect(page.locator("#notifications .toast[data-message='order_accepted']")).to_have_count(0)


def _online(customer_id: int) -> bool:
    from consumers.notifier import sender  # the notifier's own: one event loop for every call
    from live.groups import customer_group

    group = customer_group(customer_id)
    return group in sender.members([group])


def _watched(order_id: int) -> bool:
    from live.presence import is_watched

    return is_watched(order_id)


def test_a_hidden_page_asks_the_browser_to_show_it_when_the_customer_allowed_it(
    e2e_db, run_relay, run_consumers, live_url: str, page: Page, customer, password, restaurant, menu
) -> None:
    from consumers.notifier import notifier_plan, notifier_push

    order = OrderFactory(customer=customer, dish=menu["pizza"])
    # given: the customer allowed notifications on the account page, and the tab is in the
    # background (headless Chromium never hides a page, so the page is told it is hidden);
    # the browser's own Notification is kept, and each one shown is noted
    page.context.grant_permissions(["notifications"], origin=live_url.rstrip("/"))
    page.add_init_script("""
        Object.defineProperty(Document.prototype, "visibilityState", {get: () => window.__hidden ? "hidden" : "visible"});
        const Real = window.Notification;
        window.__shown = [];
        window.Notification = class extends Real {
          constructor(title, options) { super(title, options); window.__shown.push({title, ...options}); }
        };
    """)
    run_relay()
    run_consumers(notifier_plan, notifier_push)
    log_in(page, live_url, customer.username, password, "/account/")
    expect(page.locator("#browser-notifications-state")).to_have_text("Allowed")
    expect(page.locator("#allow-browser-notifications")).to_be_hidden()
    page.evaluate("window.__hidden = true")
    wait_until(lambda: _online(customer.pk), what="the page's notifications socket")
    # when: the order is paid
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    # then: the browser is asked to show it, once, tagged with the notification's key; no toast
    # (polled from here: wait_for_function evaluates a string in the page, which the site's
    # Content-Security-Policy forbids, as it should)
    wait_until(lambda: page.evaluate("window.__shown.length") > 0, timeout=15, what="a browser notification")
    shown = page.evaluate("window.__shown")
    assert shown == [
        {
            "title": f"Order #{order.pk} is paid",
            "body": f"{restaurant.name} has your order.",
            "tag": f"order:{order.pk}:paid:push",
        }
    ]
    expect(page.locator("#notifications .toast")).to_have_count(0)
