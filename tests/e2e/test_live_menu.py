"""An open menu page shows a dish as sold out the moment someone else buys the last one."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.factories import OrderFactory


def test_a_dish_shows_sold_out_live(e2e_db, run_bridge, live_url: str, page: Page, restaurant, menu) -> None:
    run_bridge()
    page.goto(f"{live_url}/r/{restaurant.slug}/")
    soup = page.locator(f"#item-{menu['soup'].pk}")
    expect(soup.get_by_role("button", name="Add to cart")).to_be_visible()
    expect(page.locator("main#main")).to_have_attribute("data-live", "on")

    # when another customer buys the last five
    OrderFactory(dish=menu["soup"], quantity=5, delivery_address="2 Elsewhere")

    # then this page shows it sold out, without a reload
    expect(soup.locator(".badge-soldout")).to_have_text("Sold out", timeout=5_000)
    expect(page.locator(f"#item-{menu['soup'].pk}").get_by_role("button", name="Add to cart")).to_have_count(0)


def test_a_menu_page_that_was_offline_catches_up_on_stock(
    e2e_db, run_bridge, live_url: str, page: Page, restaurant, menu
) -> None:
    run_bridge()
    page.goto(f"{live_url}/r/{restaurant.slug}/")
    main = page.locator("main#main")
    expect(main).to_have_attribute("data-live", "on")

    # when the page loses its connection while the last soups are sold
    page.context.set_offline(True)
    page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
    expect(main).to_have_attribute("data-live", "off")
    OrderFactory(dish=menu["soup"], quantity=5, delivery_address="2 Elsewhere")
    page.context.set_offline(False)

    # then, back online, it shows the soup sold out without a reload
    soup = page.locator(f"#item-{menu['soup'].pk}")
    expect(soup.locator(".badge-soldout")).to_have_text("Sold out", timeout=15_000)
    expect(main).to_have_attribute("data-live", "on")


def test_a_dish_sold_out_between_page_load_and_subscription_shows_sold_out(
    e2e_db, bus, live_url: str, page: Page, restaurant, menu
) -> None:
    # No relay or bridge runs: no menu.stock frame can tell the page; only the socket's snapshot can.
    def sell_out_then_connect(socket) -> None:  # type: ignore[no-untyped-def]
        # the page has loaded (the soup on sale) and opens its socket: now the last five go
        OrderFactory(dish=menu["soup"], quantity=5, delivery_address="2 Elsewhere")
        socket.connect_to_server()

    page.route_web_socket(re.compile(r".*/ws/menus/\d+/$"), sell_out_then_connect)
    page.goto(f"{live_url}/r/{restaurant.slug}/")
    soup = page.locator(f"#item-{menu['soup'].pk}")
    expect(page.locator("main#main")).to_have_attribute("data-live", "on")

    # then the page shows the soup sold out, without a reload
    expect(soup.locator(".badge-soldout")).to_have_text("Sold out", timeout=10_000)
    expect(page.locator(f"#item-{menu['soup'].pk}").get_by_role("button", name="Add to cart")).to_have_count(0)
