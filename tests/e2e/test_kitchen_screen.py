"""The whole live loop in real Chromium: a customer orders and pays from the wallet; the kitchen
screen (another browser context) chimes and flashes the new ticket and takes it to delivered;
the customer's tracking page shows every step without reloading, and catches up after its
connection is cut. Real daphne, relay, balance, billing and bridge processes, RabbitMQ, Redis."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import PAGE_TIMEOUT_MS, log_in
from tests.factories import MenuCategoryFactory, MenuItemFactory, StaffMembershipFactory, WalletFactory
from tests.support import ManagedProcess

LIVE = 15_000  # ms: a step that travels outbox → RabbitMQ → bridge → Redis → daphne → page


def test_an_order_goes_from_checkout_to_delivered_live_on_both_screens(
    e2e_db, bus, run_relay, live_url: str, page: Page, browser: Browser, customer, password, restaurant, menu, tmp_path
) -> None:
    # given money in the wallet, a cook, a drinks station, and every worker on this test's vhost
    WalletFactory(user=customer, balance="50.00")
    cook = StaffMembershipFactory(restaurant=restaurant).user
    lemonade = MenuItemFactory(
        category=MenuCategoryFactory(restaurant=restaurant, name="Drinks", station="bar"), name="Lemonade"
    )
    workers = [
        ManagedProcess("consume", queue, log_dir=tmp_path, RABBITMQ_URL=bus)
        for queue in ("balance.commands", "billing.order_placed", "bridge.notification")
    ]
    run_relay()
    kitchen_context = browser.new_context(viewport={"width": 1366, "height": 900})
    kitchen_context.set_default_timeout(PAGE_TIMEOUT_MS)
    bar_context = browser.new_context(viewport={"width": 1024, "height": 768})
    bar_context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        # the kitchen opens its screen and turns the sound on; the bar opens one for its station
        kitchen = kitchen_context.new_page()
        log_in(kitchen, live_url, cook.username, password, "/kitchen/")
        expect(kitchen).to_have_url(re.compile(rf"/kitchen/{restaurant.pk}/$"))
        expect(kitchen.locator("#kds-connection")).to_have_attribute("data-state", "live")
        kitchen.get_by_role("button", name="Tap to turn sound on").click()
        expect(kitchen.locator("body")).to_have_attribute("data-sound", "on")
        bar = bar_context.new_page()
        log_in(bar, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/?station=bar")
        expect(bar.locator("#kds-connection")).to_have_attribute("data-state", "live")

        # when the customer orders a pizza and a lemonade and checks out
        log_in(page, live_url, customer.username, password, f"/r/{restaurant.slug}/")
        for item in (menu["pizza"], lemonade):
            page.locator(f"#item-{item.pk}").get_by_role("button", name="Add to cart").click()
        page.goto(f"{live_url}/checkout/")
        page.get_by_role("button", name=re.compile("Place order")).click()
        expect(page).to_have_url(re.compile(r"/orders/\d+/$"))
        main = page.locator("main#main")
        order_id = main.get_attribute("data-order-id")
        page.evaluate("window.__sameDocument = true")

        # then the tracking page turns paid by itself, and the ticket arrives on the kitchen
        # screen flashing, with a chime that repeats until someone acknowledges it
        expect(main).to_have_attribute("data-status", "paid", timeout=LIVE)
        ticket = kitchen.locator(f'[data-column="paid"] .ticket[data-order-id="{order_id}"]')
        expect(ticket).to_have_class(re.compile(r"\bis-new\b"), timeout=LIVE)
        expect(kitchen.locator("#kds-alert")).to_contain_text(f"New order #{order_id}")
        expect(kitchen.locator("body")).to_have_attribute("data-alerting", "true")
        first = int(kitchen.locator("body").get_attribute("data-chimes"))
        expect(kitchen.locator("body")).not_to_have_attribute("data-chimes", str(first), timeout=6_000)
        kitchen.screenshot(path="test-artifacts/kitchen-new-ticket.png")
        # the bar's screen shows only the lemonade of it
        bar_ticket = bar.locator(f'.ticket[data-order-id="{order_id}"]')
        expect(bar_ticket.locator(".item-name")).to_have_text(["Lemonade"], timeout=LIVE)
        expect(bar_ticket).to_contain_text("+ 1 at other stations")

        # when the kitchen accepts it (one tap), the alert stops and, once the few seconds to undo
        # it are over, every screen follows
        ticket.get_by_role("button", name="Accept").click()
        expect(kitchen.locator('[data-column="accepted"]').locator(f'[data-order-id="{order_id}"]')).to_be_visible(
            timeout=LIVE
        )
        expect(kitchen.locator("body")).to_have_attribute("data-alerting", "false")
        expect(bar.locator(f'[data-column="accepted"] [data-order-id="{order_id}"]')).to_be_visible(timeout=LIVE)
        expect(main).to_have_attribute("data-status", "accepted", timeout=LIVE)

        # the kitchen's "to make" count has both dishes; the bar's only its lemonade
        expect(kitchen.locator("#kds-to-make li")).to_have_text(["1× Lemonade", "1× Pizza"])
        expect(bar.locator("#kds-to-make li")).to_have_text(["1× Lemonade"])

        # the bar crosses the lemonade off; the kitchen's screen shows it crossed off too
        bar.locator(f'.ticket[data-order-id="{order_id}"]').get_by_role("button", name=re.compile("Lemonade")).click()
        card = kitchen.locator(f'.ticket[data-order-id="{order_id}"]')
        expect(card.locator(f'[data-menu-item-id="{lemonade.pk}"]')).to_have_class(
            re.compile(r"\bis-done\b"), timeout=LIVE
        )
        expect(kitchen.locator("#kds-to-make li")).to_have_text(["1× Pizza"])
        # the kitchen flags it as a rush, then starts cooking
        card.get_by_role("button", name="Rush").click()
        expect(card).to_have_class(re.compile(r"\bis-priority\b"))
        card.get_by_role("button", name="Start").click()
        expect(main).to_have_attribute("data-status", "preparing", timeout=LIVE)

        # when the customer's connection is cut while the kitchen moves on, and comes back
        page.context.set_offline(True)
        page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting")
        card = kitchen.locator(f'[data-column="preparing"] .ticket[data-order-id="{order_id}"]')
        card.get_by_role("button", name="Ready").click()
        card = kitchen.locator(f'[data-column="ready"] .ticket[data-order-id="{order_id}"]')
        card.get_by_role("button", name="Hand to courier").click()
        expect(kitchen.locator(f'[data-column="out_for_delivery"] [data-order-id="{order_id}"]')).to_be_visible()
        page.context.set_offline(False)

        # then the tracking page catches up without a reload
        expect(main).to_have_attribute("data-status", "out_for_delivery", timeout=LIVE + 15_000)
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")

        # a mistaken "delivered" is recalled from the Done column, then delivered for real
        card = kitchen.locator(f'[data-column="out_for_delivery"] .ticket[data-order-id="{order_id}"]')
        card.get_by_role("button", name="Delivered").click()
        done = kitchen.locator(f'[data-column="done"] .ticket[data-order-id="{order_id}"]')
        expect(done).to_contain_text("Delivered")
        done.get_by_role("button", name=re.compile("Back to out for delivery", re.I)).click()
        card = kitchen.locator(f'[data-column="out_for_delivery"] .ticket[data-order-id="{order_id}"]')
        expect(card).to_be_visible()
        kitchen.screenshot(path="test-artifacts/kitchen-screen.png")
        card.get_by_role("button", name="Delivered").click()
        expect(done).to_be_visible()

        # and the customer's page has every step, in order, without having reloaded
        expect(main).to_have_attribute("data-status", "delivered", timeout=LIVE)
        expect(page.locator("#order-status")).to_have_text("Delivered")
        assert page.evaluate("window.__sameDocument === true")
        timeline = main.locator("ol[data-timeline] li[data-version]")
        assert timeline.evaluate_all("items => items.map(i => Number(i.dataset.version))") == list(range(1, 10))
        page.screenshot(path="test-artifacts/tracking-page.png", full_page=True)
    finally:
        for worker in workers:
            worker.terminate()
        kitchen_context.close()
        bar_context.close()
