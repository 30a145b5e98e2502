"""The staff dashboard in real Chromium: a cook opens their restaurant's dashboard; orders are
placed, paid or refused, rejected and refunded, cooked and recalled while the page is open;
the page's figures and its chart's data become what the ordering tables say, without a
reload. Real daphne, relay, balance, billing and analytics processes, RabbitMQ, Redis."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

from playwright.sync_api import Page, expect

from analytics.figures import duration_label
from ordering.models import Order
from ordering.services import OrderRequest, order_place, order_recall, order_transition_by_staff
from ordering.templatetags.site_tags import money
from tests.e2e.conftest import log_in
from tests.factories import MenuCategoryFactory, MenuItemFactory, StaffMembershipFactory, UserFactory, WalletFactory
from tests.integration.test_analytics import expected_figures
from tests.support import ManagedProcess, wait_until

LIVE = 15_000  # ms: outbox → RabbitMQ → analytics → Redis → daphne → page


def test_the_dashboard_follows_orders_live_without_a_reload(
    e2e_db, bus, run_relay, live_url: str, page: Page, password, restaurant, tmp_path
) -> None:
    # given a cook, three dishes, a customer with money and one without, and every worker
    cook = StaffMembershipFactory(restaurant=restaurant).user
    mains = MenuCategoryFactory(restaurant=restaurant, name="Mains")
    dishes = [
        MenuItemFactory(category=mains, name=name, price=Decimal(price))
        for name, price in (("Margherita", "11.50"), ("Lasagne", "13.20"), ("Tiramisu", "6.40"))
    ]
    rich, poor = UserFactory(), UserFactory()
    WalletFactory(user=rich, balance="500.00")
    WalletFactory(user=poor, balance="3.00")
    workers = [
        ManagedProcess("consume", "balance.commands", log_dir=tmp_path, RABBITMQ_URL=bus),
        ManagedProcess("consume", "billing.order_placed", "billing.refunds", log_dir=tmp_path, RABBITMQ_URL=bus),
        ManagedProcess("consume", "analytics.events", log_dir=tmp_path, RABBITMQ_URL=bus),
    ]
    run_relay()
    try:
        # the cook opens the dashboard: one restaurant, so straight to its page, live, all zero
        log_in(page, live_url, cook.username, password, "/dashboard/")
        expect(page).to_have_url(re.compile(rf"/dashboard/{restaurant.pk}/$"))
        expect(page.locator("#dash-connection")).to_have_attribute("data-state", "live", timeout=LIVE)
        figure = lambda name: page.locator(f'#dashboard [data-figure="{name}"]').first  # noqa: E731
        expect(figure("orders_today")).to_have_text("0")
        expect(figure("revenue_net")).to_have_text(money(Decimal("0")))
        page.evaluate("window.__sameDocument = true")

        # when orders come in: five paid, one refused for want of money
        def place(customer, items) -> Order:  # type: ignore[no-untyped-def]
            order, _ = order_place(
                customer=customer,
                request=OrderRequest(restaurant_id=restaurant.pk, items=items, delivery_address="1 Test Lane"),
            )
            return order

        margherita, lasagne, tiramisu = (d.pk for d in dishes)
        orders = [
            place(rich, [(margherita, 2), (tiramisu, 1)]),
            place(rich, [(lasagne, 1)]),
            place(rich, [(margherita, 1)]),
            place(poor, [(lasagne, 3)]),
            place(rich, [(tiramisu, 4)]),
            place(rich, [(lasagne, 2), (margherita, 1)]),
        ]
        wait_until(
            lambda: not Order.objects.filter(pk__in=[o.pk for o in orders], status="pending_payment").exists(),
            what="every order to be charged or to fail",
        )
        # then the page counts them as they are paid
        expect(figure("orders_today")).to_have_text("6", timeout=LIVE)
        expect(figure("payment_failures")).to_have_text("1", timeout=LIVE)

        # when the kitchen rejects one (refunded), cooks two (one "ready" recalled by mistake
        # and given again) and leaves the rest waiting
        first, second, third, _, fifth, _ = orders
        order_transition_by_staff(order_id=fifth.pk, user=cook, to="rejected", reason="Out of mascarpone")
        for order in (first, second):
            for to in ("accepted", "preparing", "ready"):
                order_transition_by_staff(order_id=order.pk, user=cook, to=to)
        order_recall(order_id=second.pk, user=cook)
        order_transition_by_staff(order_id=second.pk, user=cook, to="ready")
        wait_until(lambda: Order.objects.get(pk=fifth.pk).status == "rejected", what="the rejection")
        expected = expected_figures([restaurant.pk], datetime.datetime.now(datetime.UTC))

        # then every figure on the page becomes the ordering tables' own, by itself
        expect(figure("rejections")).to_have_text("1", timeout=LIVE)
        expect(figure("refunds_count")).to_have_text(str(expected["refunds_count"]), timeout=LIVE)
        expect(figure("refunds_amount")).to_have_text(money(expected["refunds_amount"]))
        expect(figure("revenue_gross")).to_have_text(money(expected["revenue_gross"]))
        expect(figure("revenue_net")).to_have_text(money(expected["revenue_net"]))
        expect(figure("paid_orders_today")).to_have_text(str(expected["paid_orders_today"]))
        expect(figure("ready_today")).to_have_text("2", timeout=LIVE)
        expect(figure("avg_paid_to_ready")).to_have_text(duration_label(expected["avg_paid_to_ready_seconds"]))
        expect(page.locator("#dash-top-dishes li .dish-name")).to_have_text([d[1] for d in expected["top_dishes"]])
        expect(page.locator("#dash-top-dishes li .dish-quantity")).to_have_text(
            [str(d[2]) for d in expected["top_dishes"]]
        )
        assert expected["refunds_count"] == 1 and expected["payment_failures"] == 1

        # and the chart holds the per-minute series of the figures shown, minute by minute
        shown = page.evaluate("""() => ({as_of: window.passlineDashboard.figures.as_of,
                                         frames: window.passlineDashboard.frames,
                                         xs: window.passlineDashboard.chart.data[0],
                                         ys: window.passlineDashboard.chart.data[1]})""")
        as_of = datetime.datetime.fromisoformat(shown["as_of"])
        series = expected_figures([restaurant.pk], as_of)["per_minute"]
        assert shown["ys"] == series and sum(series) == 6
        first_minute = as_of.replace(second=0, microsecond=0) - datetime.timedelta(minutes=59)
        assert shown["xs"][0] == first_minute.timestamp() and shown["xs"][-1] - shown["xs"][0] == 59 * 60
        # all of it arrived over the socket, in the same document
        assert shown["frames"] >= 2 and page.evaluate("window.__sameDocument === true")
        page.screenshot(path="test-artifacts/dashboard.png", full_page=True)
    finally:
        for worker in workers:
            worker.terminate()
