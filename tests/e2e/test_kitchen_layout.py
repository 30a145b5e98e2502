"""The kitchen screen fits the screens kitchens have, full of tickets with long dish names, long
station names and long notes without spaces: a 1024x768 tablet, a 1366x768 screen and a phone,
never scrolling sideways; dish names take two lines at most, station tags are whole."""

from __future__ import annotations

from typing import cast

import pytest
from playwright.sync_api import Browser, expect

from ordering.models import StaffMembership
from tests.e2e.conftest import PAGE_TIMEOUT_MS, log_in, screenshot
from tests.factories import MenuCategoryFactory, MenuItemFactory, OrderFactory, StaffMembershipFactory

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
LONG_NAME = "Slow-roasted aubergine parmigiana with smoked buffalo mozzarella and basil oil"
LONG_NOTE = "Doorcode:" + "4711" * 40  # no space anywhere to break at


@pytest.mark.parametrize(
    ("width", "height", "name"),
    [(1024, 768, "tablet-1024"), (1366, 768, "screen-1366"), (390, 844, "phone-390")],
)
def test_a_full_kitchen_screen_fits_without_sideways_scrolling(
    e2e_db, live_url: str, browser: Browser, restaurant, menu, customer, password, width, height, name
) -> None:
    # given tickets in every open column, with long names, a long station name and a long note
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    long_dish = MenuItemFactory(
        category=MenuCategoryFactory(restaurant=restaurant, name="Oven", station="wood-fired-oven-and-grill"),
        name=LONG_NAME,
    )
    for _ in range(3):
        OrderFactory(customer=customer, items=[(long_dish, 2), (menu["pizza"], 1)], notes=LONG_NOTE, paid=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = context.new_page()

        # when the cook opens the kitchen screen
        log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
        expect(page.locator("#kds-connection")).to_have_attribute("data-state", "live")
        tickets = page.locator('[data-column="paid"] .ticket')
        expect(tickets).to_have_count(3)

        # then nothing scrolls sideways, not the page and not a column
        assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert page.evaluate(
            "[...document.querySelectorAll('.kds-tickets')].every((c) => c.scrollWidth <= c.clientWidth)"
        )
        ticket = tickets.first
        # the long dish name takes at most two lines, and says itself whole on hover
        dish = ticket.locator(".item-name", has_text="Slow-roasted")
        line_height = float(dish.evaluate("(e) => parseFloat(getComputedStyle(e).lineHeight)"))
        box = dish.bounding_box()
        assert box is not None and box["height"] <= 2 * line_height + 1, (box, line_height)
        expect(dish).to_have_attribute("title", LONG_NAME)
        # the station tag is whole: not clipped, inside its ticket
        tag = ticket.locator(".item-station").first
        assert tag.evaluate("(e) => e.scrollWidth <= e.clientWidth")
        tag_box, ticket_box = tag.bounding_box(), ticket.bounding_box()
        assert tag_box and ticket_box and tag_box["x"] + tag_box["width"] <= ticket_box["x"] + ticket_box["width"]
        # the note without spaces wraps inside its ticket
        note_box = ticket.locator(".ticket-notes").bounding_box()
        assert note_box and note_box["x"] + note_box["width"] <= ticket_box["x"] + ticket_box["width"]
        assert ticket.locator(".ticket-notes").evaluate("(e) => e.scrollWidth <= e.clientWidth")
        # and the ticket's buttons are all in view of the column
        accept = ticket.get_by_role("button", name="Accept")
        expect(accept).to_be_visible()
        screenshot(page, f"kitchen-{name}")
    finally:
        context.close()
