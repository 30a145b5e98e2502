"""Dish options in the browser, at desktop and phone size: a customer chooses a size, an extra and
a note, checks out, and the kitchen screen shows them on the ticket; the menu's dietary filter,
with and without JavaScript; the staff page of a dish's choices. axe stays clean on each page."""

from __future__ import annotations

import re
from decimal import Decimal as D
from typing import cast

import pytest
from playwright.sync_api import Browser, Page, expect

from ordering.models import MenuItem, Order, StaffMembership
from ordering.services import order_transition
from ordering.status import Actor, OrderStatus
from tests.e2e.conftest import PAGE_TIMEOUT_MS, log_in, screenshot
from tests.e2e.test_accessibility import violations
from tests.factories import (
    MenuCategoryFactory,
    MenuItemFactory,
    OptionFactory,
    OptionGroupFactory,
    StaffMembershipFactory,
    WalletFactory,
)

SIZES = ["desktop", "phone"]


def _burger_menu(restaurant) -> dict[str, MenuItem]:
    """A burger with a required size and up to two extras, and a vegan salad."""
    mains = MenuCategoryFactory(restaurant=restaurant, name="Burgers")
    burger = cast(
        MenuItem,
        MenuItemFactory(
            category=mains, name="Smash burger", price=D("9.00"), allergens=["gluten", "milk"], dietary=["spicy"]
        ),
    )
    salad = cast(
        MenuItem, MenuItemFactory(category=mains, name="Garden salad", price=D("7.00"), dietary=["vegetarian", "vegan"])
    )
    size = OptionGroupFactory(menu_item=burger, name="Size", min_choices=1, max_choices=1, position=0)
    OptionFactory(group=size, name="Regular", position=0)
    OptionFactory(group=size, name="Large", price_delta=D("2.50"), position=1)
    extras = OptionGroupFactory(menu_item=burger, name="Extras", min_choices=0, max_choices=2, position=1)
    OptionFactory(group=extras, name="Cheese", price_delta=D("1.00"), position=0)
    OptionFactory(group=extras, name="Bacon", price_delta=D("1.50"), position=1)
    return {"burger": burger, "salad": salad}


@pytest.mark.parametrize("size", SIZES)
def test_a_size_an_extra_and_a_note_go_from_the_menu_to_the_kitchen_ticket(
    e2e_db, live_url: str, page: Page, phone_page: Page, customer, password, restaurant, size
) -> None:
    # given a burger with sizes and extras, money in the wallet and a cook
    p = page if size == "desktop" else phone_page
    dishes = _burger_menu(restaurant)
    WalletFactory(user=customer, balance="50.00")
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    found: list[str] = []

    # when the customer opens the burger's options, picks Large and Bacon and writes a note
    log_in(p, live_url, customer.username, password, f"/r/{restaurant.slug}/")
    dish = p.locator(f"#item-{dishes['burger'].pk}")
    expect(dish).to_contain_text("Allergens: Gluten, Milk")
    expect(dish.locator(".dish-tags")).to_have_text("Spicy")
    dish.locator("summary").click()
    dish.get_by_label("Large").check()
    dish.get_by_label("Bacon").check()
    dish.get_by_label("Note for the kitchen").fill("No onions, please")
    found += violations(p)
    screenshot(p, f"dish-options-menu-{size}")
    dish.get_by_role("button", name="Add to cart").click()

    # then the cart shows the options, the note and the price with them (9.00 + 2.50 + 1.50)
    expect(p.locator("#cart-count")).to_have_attribute("data-cart-count", "1")
    p.goto(f"{live_url}/cart/")
    line = p.locator(".cart-line")
    expect(line).to_contain_text("Size: Large; Extras: Bacon")
    expect(line).to_contain_text("No onions, please")
    expect(line.locator(".cart-line-total")).to_have_text("€13.00")
    found += violations(p)
    screenshot(p, f"dish-options-cart-{size}")

    # and the checkout's summary too; the order page after placing it
    p.goto(f"{live_url}/checkout/")
    expect(p.locator(".summary-lines")).to_contain_text("Size: Large; Extras: Bacon")
    p.get_by_role("button", name=re.compile("Place order")).click()
    expect(p).to_have_url(re.compile(r"/orders/\d+/$"))
    expect(p.locator(".lines-table")).to_contain_text("No onions, please")
    expect(p.locator("#order-total")).to_have_text("€13.00")
    assert p.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")

    # when it is paid, the kitchen screen shows the options and the note on the ticket
    order = Order.objects.get(customer=customer)
    order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
    order_transition(order_id=order.pk, to=OrderStatus.ACCEPTED, actor_kind=Actor.STAFF, actor=cook)
    p.context.clear_cookies()
    log_in(p, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    ticket = p.locator(f'.ticket[data-order-id="{order.pk}"]')
    expect(ticket.locator(".item-name")).to_have_text("Smash burger")
    expect(ticket.locator(".item-options")).to_have_text("Size: Large; Extras: Bacon")
    expect(ticket.locator(".item-note")).to_have_text("Note: No onions, please")
    found += violations(p)
    screenshot(p, f"dish-options-kitchen-{size}")
    # and the cook crosses that line off
    ticket.locator(".item-bump").click()
    expect(ticket.locator(".ticket-item")).to_have_class(re.compile(r"\bis-done\b"))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("size", SIZES)
def test_the_dietary_filter_shows_only_the_tagged_dishes(
    e2e_db, live_url: str, page: Page, phone_page: Page, restaurant, size
) -> None:
    p = page if size == "desktop" else phone_page
    dishes = _burger_menu(restaurant)
    p.goto(f"{live_url}/r/{restaurant.slug}/")
    expect(p.locator(f"#item-{dishes['burger'].pk}")).to_be_visible()

    # when "Vegan" is ticked (the page sends the filter by itself)
    p.locator(".diet-filter").get_by_label("Vegan").check()

    # then only the salad is left, its badges said in words
    expect(p).to_have_url(re.compile(r"[?&]diet=vegan"))
    expect(p.locator(f"#item-{dishes['burger'].pk}")).to_have_count(0)
    expect(p.locator(f"#item-{dishes['salad'].pk} .dish-tags")).to_have_text(re.compile("Vegetarian.*Vegan", re.S))
    expect(p.locator(".diet-filter").get_by_label("Vegan")).to_be_checked()
    assert not violations(p)
    screenshot(p, f"dish-options-diet-filter-{size}")


def test_the_dietary_filter_and_adding_with_options_work_without_javascript(
    e2e_db, live_url: str, browser: Browser, restaurant
) -> None:
    dishes = _burger_menu(restaurant)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        p = context.new_page()
        p.goto(f"{live_url}/r/{restaurant.slug}/")
        p.locator(".diet-filter").get_by_label("Spicy").check()
        p.locator(".diet-filter").get_by_role("button", name="Filter").click()
        expect(p).to_have_url(re.compile(r"[?&]diet=spicy"))
        expect(p.locator(f"#item-{dishes['salad'].pk}")).to_have_count(0)
        dish = p.locator(f"#item-{dishes['burger'].pk}")
        dish.locator("summary").click()
        dish.get_by_label("Regular").check()
        dish.get_by_label("Cheese").check()
        dish.get_by_role("button", name="Add to cart").click()
        expect(p.get_by_text("Added 1 × Smash burger to your cart.")).to_be_visible()
        p.goto(f"{live_url}/cart/")
        expect(p.locator(".cart-line")).to_contain_text("Size: Regular; Extras: Cheese")
        expect(p.locator(".cart-line .cart-line-total")).to_have_text("€10.00")
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_staff_add_an_option_group_and_tags_on_the_dishs_page(
    e2e_db, live_url: str, page: Page, phone_page: Page, password, restaurant, size
) -> None:
    p = page if size == "desktop" else phone_page
    dishes = _burger_menu(restaurant)
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    log_in(p, live_url, cook.username, password, f"/staff/{restaurant.pk}/dishes/{dishes['salad'].pk}/")
    p.get_by_role("link", name="Edit options and allergens of Garden salad").click()

    p.get_by_label("Mustard").check()
    p.get_by_role("button", name="Save allergens and tags").click()
    expect(p.get_by_text("Allergens and dietary tags of Garden salad are saved.")).to_be_visible()
    expect(p.get_by_label("Mustard")).to_be_checked()

    form = p.locator("#new-group-form")
    form.get_by_label("Group name").fill("Dressing")
    form.get_by_label("Fewest choices").fill("1")
    form.get_by_label("Most choices").fill("1")
    form.get_by_label("Options").fill("Vinaigrette\nYoghurt +0.50")
    form.get_by_role("button", name="Add the group").click()
    expect(p.get_by_role("heading", name="Dressing")).to_be_visible()
    assert not violations(p)
    screenshot(p, f"dish-options-staff-{size}")

    # and the customer's menu asks for the dressing
    p.goto(f"{live_url}/r/{restaurant.slug}/")
    salad = p.locator(f"#item-{dishes['salad'].pk}")
    expect(salad).to_contain_text("Allergens: Mustard")
    salad.locator("summary").click()
    expect(salad.get_by_label("Yoghurt")).to_be_visible()
