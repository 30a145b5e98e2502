"""Dish options, notes, allergens and dietary tags on the real MariaDB: placing (service and API),
merging, refusals, the idempotency fingerprint, the menu page and its filter, the cart and
checkout, "order again", and the staff's page of a dish's choices."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any, cast

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Payment
from bus.models import OutboxMessage
from ordering import services
from ordering.exceptions import IdempotencyConflict, InvalidNote, InvalidOptions
from ordering.models import Option, OptionGroup, Order, OrderLine, StaffMembership
from ordering.services import ItemRequest, OrderRequest, order_place
from tests.factories import MenuCategoryFactory, MenuItemFactory, OptionFactory, OptionGroupFactory, OrderFactory
from tests.integration.site_helpers import add_to_cart, checkout_token

pytestmark = pytest.mark.django_db
JSON = "application/json"


@pytest.fixture
def dishes(restaurant):
    """A burger with a required size and up to two extras; plain fries; a salad tagged vegan."""
    mains = MenuCategoryFactory(restaurant=restaurant, name="Mains", position=0)
    burger = MenuItemFactory(
        category=mains, name="Burger", price=D("10.00"), allergens=["gluten", "milk"], dietary=["spicy"]
    )
    fries = MenuItemFactory(category=mains, name="Fries", price=D("3.50"), daily_stock=10)
    salad = MenuItemFactory(category=mains, name="Salad", price=D("7.00"), dietary=["vegan", "vegetarian"])
    size = OptionGroupFactory(menu_item=burger, name="Size", min_choices=1, max_choices=1, position=0)
    extras = OptionGroupFactory(menu_item=burger, name="Extras", min_choices=0, max_choices=2, position=1)
    return {
        "burger": burger,
        "fries": fries,
        "salad": salad,
        "regular": OptionFactory(group=size, name="Regular", position=0),
        "large": OptionFactory(group=size, name="Large", price_delta=D("2.50"), position=1),
        "cheese": OptionFactory(group=extras, name="Cheese", price_delta=D("1.00"), position=0),
        "bacon": OptionFactory(group=extras, name="Bacon", price_delta=D("1.50"), position=1),
        "egg": OptionFactory(group=extras, name="Egg", price_delta=D("1.20"), position=2),
        "truffle": OptionFactory(group=extras, name="Truffle", price_delta=D("5.00"), position=3, is_available=False),
    }


def _place(customer, restaurant, *items, key=None):
    request = OrderRequest(restaurant_id=restaurant.pk, items=list(items), delivery_address="1 Lane")
    return order_place(customer=customer, request=request, idempotency_key=key)


def _order(**fields: Any) -> Order:
    return cast(Order, OrderFactory(**fields))


def _ids(*options):
    return tuple(option.pk for option in options)


# The service ----------------------------------------------------------------------------------


def test_a_dish_with_a_size_extras_and_a_note_is_priced_by_the_server_and_copied(customer, restaurant, dishes):
    # when: a large burger with cheese and bacon, and a note
    order, created = _place(
        customer,
        restaurant,
        ItemRequest(dishes["burger"].pk, 2, _ids(dishes["bacon"], dishes["large"], dishes["cheese"]), " no  onions "),
    )
    # then: 10.00 + 2.50 + 1.00 + 1.50 = 15.00 each, the options and the note copied in menu order
    assert created
    [line] = OrderLine.objects.filter(order=order)
    assert line.unit_price == D("15.00") and line.quantity == 2 and order.total == D("30.00")
    assert line.note == "no onions"
    assert [(c["group"], c["name"], c["price_delta"]) for c in line.options] == [
        ("Size", "Large", "2.50"),
        ("Extras", "Cheese", "1.00"),
        ("Extras", "Bacon", "1.50"),
    ]
    assert line.options_text == "Size: Large; Extras: Cheese, Bacon"
    # and: order.placed carries them
    row = OutboxMessage.objects.get(aggregate=f"order:{order.pk}", type="order.placed")
    [placed] = json.loads(row.body)["payload"]["lines"]
    assert placed["note"] == "no onions" and placed["unit_price"] == "15.00"
    assert [(o["name"], o["price_delta"]) for o in placed["options"]] == [
        ("Large", "2.50"),
        ("Cheese", "1.00"),
        ("Bacon", "1.50"),
    ]


def test_identical_choices_merge_and_other_choices_or_notes_are_other_lines(customer, restaurant, dishes):
    large, cheese = dishes["large"], dishes["cheese"]
    order, _ = _place(
        customer,
        restaurant,
        ItemRequest(dishes["burger"].pk, 1, _ids(large, cheese)),
        ItemRequest(dishes["burger"].pk, 2, _ids(cheese, large)),
        ItemRequest(dishes["burger"].pk, 1, _ids(large, cheese), "well done"),
        ItemRequest(dishes["burger"].pk, 1, _ids(dishes["regular"])),
        (dishes["fries"].pk, 2),
        (dishes["fries"].pk, 1),
    )
    lines = sorted((line.name, line.quantity, line.unit_price, line.note) for line in order.lines.all())
    assert lines == [
        ("Burger", 1, D("10.00"), ""),
        ("Burger", 1, D("13.50"), "well done"),
        ("Burger", 3, D("13.50"), ""),
        ("Fries", 3, D("3.50"), ""),
    ]
    assert order.total == D("10.00") + D("13.50") * 4 + D("10.50")


def test_stock_counts_the_dish_whatever_its_notes(customer, restaurant, dishes):
    _place(customer, restaurant, ItemRequest(dishes["fries"].pk, 4, (), "salty"), ItemRequest(dishes["fries"].pk, 3))
    dishes["fries"].refresh_from_db()
    assert dishes["fries"].remaining_today == 3


@pytest.mark.parametrize(
    ("chosen", "reason", "detail"),
    [
        (lambda d: (), "too_few_options", ("group", "Size")),
        (lambda d: (d["regular"], d["large"]), "too_many_options", ("group", "Size")),
        (lambda d: (d["regular"], d["cheese"], d["bacon"], d["egg"]), "too_many_options", ("group", "Extras")),
        (lambda d: (d["regular"], d["truffle"]), "option_unavailable", ("option_ids", None)),
    ],
)
def test_options_breaking_the_groups_rules_are_refused_and_change_nothing(
    customer, restaurant, dishes, chosen, reason, detail
):
    with pytest.raises(InvalidOptions) as refused:
        _place(customer, restaurant, ItemRequest(dishes["burger"].pk, 1, _ids(*chosen(dishes))))
    assert refused.value.code == "invalid_options" and refused.value.details["reason"] == reason
    key, value = detail
    assert key in refused.value.details and (value is None or refused.value.details[key] == value)
    assert not Order.objects.exists()


def test_an_option_of_another_dish_is_refused(customer, restaurant, dishes):
    other = cast(Option, OptionFactory(group=OptionGroupFactory(menu_item=dishes["salad"], name="Dressing")))
    with pytest.raises(InvalidOptions) as refused:
        _place(customer, restaurant, ItemRequest(dishes["burger"].pk, 1, _ids(dishes["regular"], other)))
    assert refused.value.details == {
        "menu_item_id": dishes["burger"].pk,
        "reason": "unknown_option",
        "option_ids": [other.pk],
    }
    assert not Order.objects.exists()


def test_a_note_over_the_limit_is_refused(customer, restaurant, dishes):
    with pytest.raises(InvalidNote):
        _place(customer, restaurant, ItemRequest(dishes["fries"].pk, 1, (), "x" * 141))
    assert not Order.objects.exists()


def test_the_idempotency_key_tells_other_options_or_notes_from_a_retry(customer, restaurant, dishes):
    first = ItemRequest(dishes["burger"].pk, 1, _ids(dishes["large"]), "no onions")
    order, created = _place(customer, restaurant, first, key="k-1")
    again, created_again = _place(customer, restaurant, first, key="k-1")
    assert created and not created_again and again.pk == order.pk
    with pytest.raises(IdempotencyConflict):
        _place(
            customer, restaurant, ItemRequest(dishes["burger"].pk, 1, _ids(dishes["regular"]), "no onions"), key="k-1"
        )
    with pytest.raises(IdempotencyConflict):
        _place(customer, restaurant, ItemRequest(dishes["burger"].pk, 1, _ids(dishes["large"]), "no garlic"), key="k-1")
    assert Order.objects.count() == 1


# The API ---------------------------------------------------------------------------------------


def _bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def test_the_menu_lists_option_groups_allergens_and_dietary_tags_without_n_plus_one(
    restaurant, dishes, django_assert_max_num_queries
):
    for _ in range(5):  # more dishes with groups must not mean more queries
        OptionFactory(group=OptionGroupFactory(menu_item=MenuItemFactory(category=dishes["burger"].category)))
    with django_assert_max_num_queries(5):
        response = Client().get(f"/api/v1/restaurants/{restaurant.pk}/menu")
    assert response.status_code == 200
    burger = next(d for d in response.json() if d["name"] == "Burger")
    assert burger["allergens"] == ["gluten", "milk"] and burger["dietary"] == ["spicy"]
    size, extras = burger["option_groups"]
    assert (size["name"], size["min_choices"], size["max_choices"]) == ("Size", 1, 1)
    assert [(o["name"], o["price_delta"], o["available"]) for o in extras["options"]] == [
        ("Cheese", "1.00", True),
        ("Bacon", "1.50", True),
        ("Egg", "1.20", True),
        ("Truffle", "5.00", False),
    ]


def test_an_api_order_with_options_and_a_note(customer, restaurant, dishes):
    body = {
        "restaurant_id": restaurant.pk,
        "items": [
            {
                "menu_item_id": dishes["burger"].pk,
                "quantity": 1,
                "options": list(_ids(dishes["large"], dishes["bacon"])),
                "note": "no onions",
            },
            {"menu_item_id": dishes["fries"].pk, "quantity": 2},
        ],
        "delivery_address": "1 Lane",
    }
    response = _bearer(customer).post("/api/v1/orders", body, content_type=JSON)
    assert response.status_code == 201, response.content
    burger, fries = response.json()["items"]
    assert burger["unit_price"] == "14.00" and burger["note"] == "no onions"
    assert [(o["group"], o["name"], o["price_delta"]) for o in burger["options"]] == [
        ("Size", "Large", "2.50"),
        ("Extras", "Bacon", "1.50"),
    ]
    assert burger["options"][0]["option_id"] == dishes["large"].pk
    assert (fries["options"], fries["note"], fries["unit_price"]) == ([], "", "3.50")
    assert response.json()["total"] == "21.00"


def test_an_old_client_orders_plain_dishes_and_is_told_which_group_a_dish_needs(customer, restaurant, dishes):
    client = _bearer(customer)

    def body(item):
        return {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": item.pk, "quantity": 1}],
            "delivery_address": "1 Lane",
        }

    assert client.post("/api/v1/orders", body(dishes["fries"]), content_type=JSON).status_code == 201
    refused = client.post("/api/v1/orders", body(dishes["burger"]), content_type=JSON)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_options" and error["details"]["group"] == "Size"
    assert "Size" in error["message"]


def test_api_refusals_of_options_and_notes_have_the_contract_shape(customer, restaurant, dishes):
    client = _bearer(customer)
    item = {"menu_item_id": dishes["burger"].pk, "quantity": 1}
    cases = [
        (
            {**item, "options": [dishes["regular"].pk, dishes["cheese"].pk, dishes["bacon"].pk, dishes["egg"].pk]},
            "invalid_options",
        ),
        ({**item, "options": [dishes["regular"].pk], "note": "x" * 141}, "invalid_note"),
        ({**item, "options": ["1"]}, "invalid_request"),
        ({**item, "options": [dishes["regular"].pk], "note": "x" * 2001}, "invalid_request"),
    ]
    for line, code in cases:
        body = {"restaurant_id": restaurant.pk, "items": [line], "delivery_address": "1 Lane"}
        response = client.post("/api/v1/orders", body, content_type=JSON)
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), line
    assert not Order.objects.exists()


def test_the_openapi_schema_documents_options_and_notes():
    schema = Client().get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"options", "note"} <= set(components["OrderLineIn"]["properties"])
    assert {"options", "note"} <= set(components["OrderLineOut"]["properties"])
    assert {"allergens", "dietary", "option_groups"} <= set(components["MenuItemOut"]["properties"])
    refusals = schema["paths"]["/api/v1/orders"]["post"]["responses"]["422"]["description"]
    assert "`invalid_options`" in refusals and "`invalid_note`" in refusals


# The site ---------------------------------------------------------------------------------------


def test_the_menu_shows_badges_options_and_filters_by_dietary_tags(client, restaurant, dishes):
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("restaurant_menu", args=[restaurant.slug])).content.decode()
    assert len(queries) <= 12
    assert "Allergens:" in page and ">Gluten<" in page and ">Spicy<" in page
    assert "Choose options" in page and 'name="option"' in page and "+€2.50" in page
    filtered = client.get(reverse("restaurant_menu", args=[restaurant.slug]), {"diet": ["vegan"]}).content.decode()
    assert "Salad" in filtered and "Burger" not in filtered and "Fries" not in filtered
    assert 'value="vegan" checked' in filtered
    added = client.post(
        reverse("restaurant_menu", args=[restaurant.slug]) + "?diet=vegan&diet=bogus",
        {"item_id": dishes["salad"].pk, "quantity": 1},
    )
    assert added.status_code == 302 and added["Location"].endswith(f"?diet=vegan#item-{dishes['salad'].pk}")
    nothing = client.get(reverse("restaurant_menu", args=[restaurant.slug]), {"diet": ["vegan", "spicy"]})
    assert "No dishes match" in nothing.content.decode()


def test_adding_with_options_and_a_note_then_checkout_places_that_line(client, customer, restaurant, dishes):
    client.force_login(customer)
    options = {"option": [dishes["large"].pk, dishes["cheese"].pk], "note": "no onions"}
    assert add_to_cart(client, dishes["burger"], 2, **options).status_code == 302
    assert add_to_cart(client, dishes["burger"], 1, **options).status_code == 302  # the same line
    assert add_to_cart(client, dishes["burger"], 1, option=[dishes["regular"].pk]).status_code == 302
    cart = client.get(reverse("cart")).content.decode()
    assert "Size: Large; Extras: Cheese" in cart and "no onions" in cart and "€13.50" in cart and "€40.50" in cart
    response = client.post(
        reverse("checkout"), {"delivery_address": "1 Lane", "notes": "", "checkout_token": checkout_token(client)}
    )
    assert response.status_code == 302, response.content.decode()
    order = Order.objects.get()
    lines = sorted((line.quantity, line.unit_price, line.note, line.options_text) for line in order.lines.all())
    assert lines == [(1, D("10.00"), "", "Size: Regular"), (3, D("13.50"), "no onions", "Size: Large; Extras: Cheese")]
    detail = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "Size: Large; Extras: Cheese" in detail and "no onions" in detail


def test_adding_without_the_required_size_or_with_a_long_note_is_a_form_error(client, restaurant, dishes):
    response = add_to_cart(client, dishes["burger"], 1)
    assert response.status_code == 400 and "Choose one of Size for Burger." in response.content.decode()
    response = add_to_cart(client, dishes["fries"], 1, note="x" * 141)
    assert response.status_code == 400 and "140 characters" in response.content.decode()
    response = add_to_cart(client, dishes["burger"], 1, option=["abc"])
    assert response.status_code == 400
    assert not (client.session.get("cart") or {}).get("lines")


def test_order_again_keeps_options_and_notes_and_says_which_options_are_gone(client, customer, restaurant, dishes):
    order = _order(
        customer=customer,
        items=[
            (dishes["burger"], 1, (dishes["large"], dishes["bacon"]), "no onions"),
            (dishes["fries"], 1, (), "salty"),
        ],
    )
    Option.objects.filter(pk=dishes["bacon"].pk).update(is_available=False)
    client.force_login(customer)
    response = client.post(reverse("order_again", args=[order.pk]), follow=True)
    page = response.content.decode()
    assert "Bacon is no longer offered with Burger" in page
    assert "Size: Large" in page and "Bacon" not in page.split("Your cart")[-1].split("Summary")[0].replace(
        "Bacon is no longer offered", ""
    )
    entries = sorted(
        (e["item"], e["options"], e["note"], e["quantity"]) for e in client.session["cart"]["lines"].values()
    )
    assert entries == [
        (dishes["burger"].pk, [dishes["large"].pk], "no onions", 1),
        (dishes["fries"].pk, [], "salty", 1),
    ]


def test_order_again_skips_a_dish_whose_required_choice_is_gone(client, customer, restaurant, dishes):
    order = _order(customer=customer, items=[(dishes["burger"], 1, (dishes["large"],)), (dishes["fries"], 1)])
    Option.objects.filter(pk=dishes["large"].pk).delete()
    client.force_login(customer)
    page = client.post(reverse("order_again", args=[order.pk]), follow=True).content.decode()
    assert "Burger (Size: Large) is not available any more" in page


def test_the_receipt_shows_options_and_notes(client, customer, restaurant, dishes):
    order = _order(customer=customer, items=[(dishes["burger"], 1, (dishes["large"],), "no onions")], paid=True)
    Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED)
    client.force_login(customer)
    receipt = client.get(reverse("order_receipt", args=[order.pk])).content.decode()
    assert "Size: Large" in receipt and "no onions" in receipt
    pdf = client.get(reverse("order_receipt_pdf", args=[order.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"


# The staff's page of a dish's choices -----------------------------------------------------------


def test_staff_set_allergens_tags_and_option_groups(client, restaurant, dishes):
    from tests.factories import StaffMembershipFactory, UserFactory

    staff = UserFactory()
    StaffMembershipFactory(user=staff, restaurant=restaurant)
    client.force_login(staff)
    url = reverse("staff_dish_choices", args=[restaurant.pk, dishes["salad"].pk])
    assert client.get(url).status_code == 200

    response = client.post(url, {"action": "tags", "allergens": ["mustard", "sesame"], "dietary": ["vegan"]})
    assert response.status_code == 302
    dishes["salad"].refresh_from_db()
    assert dishes["salad"].allergens == ["mustard", "sesame"] and dishes["salad"].dietary == ["vegan"]

    new = {
        "action": "group",
        "prefix": "new",
        "new-name": "Dressing",
        "new-min_choices": "1",
        "new-max_choices": "1",
        "new-options": "Vinaigrette\nYoghurt +0.50\nBlue cheese +1.00 (unavailable)",
    }
    assert client.post(url, new).status_code == 302
    group = OptionGroup.objects.get(menu_item=dishes["salad"])
    assert [(o.name, o.price_delta, o.is_available) for o in group.options.order_by("position")] == [
        ("Vinaigrette", D("0.00"), True),
        ("Yoghurt", D("0.50"), True),
        ("Blue cheese", D("1.00"), False),
    ]
    yoghurt = group.options.get(name="Yoghurt")

    # editing keeps the id of an option whose name stays, and removes the others
    edit = {
        "action": "group",
        "prefix": f"g{group.pk}",
        f"g{group.pk}-name": "Dressing",
        f"g{group.pk}-min_choices": "0",
        f"g{group.pk}-max_choices": "1",
        f"g{group.pk}-options": "Yoghurt +0.70",
    }
    assert client.post(url, edit).status_code == 302
    assert [(o.pk, o.price_delta) for o in group.options.all()] == [(yoghurt.pk, D("0.70"))]

    # a group asking for more choices than it has options is a form error, and changes nothing
    bad = {**edit, f"g{group.pk}-max_choices": "3"}
    response = client.post(url, bad)
    assert response.status_code == 400 and "At most 1 can be chosen" in response.content.decode()
    group.refresh_from_db()
    assert group.max_choices == 1

    assert client.post(url, {"action": "delete", "prefix": f"g{group.pk}"}).status_code == 302
    assert not OptionGroup.objects.filter(menu_item=dishes["salad"]).exists()


def test_only_the_restaurants_staff_open_a_dishs_choices(client, customer, restaurant, dishes):
    client.force_login(customer)
    url = reverse("staff_dish_choices", args=[restaurant.pk, dishes["salad"].pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "tags", "allergens": ["milk"]}).status_code == 403


def test_the_paid_email_shows_each_lines_options_and_note(customer, restaurant, dishes):
    from notifications.models import Notification
    from notifications.services import notifications_plan_order_step
    from tests.factories import verified

    order = _order(
        customer=verified(customer), items=[(dishes["burger"], 1, (dishes["large"],), "no onions")], paid=True
    )
    Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED)
    notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    body = Notification.objects.get(order=order, message="order_paid", channel="email").body
    lines = [line.strip() for line in body.splitlines()]
    assert "1 × Burger  €12.50 (VAT 7.00%)" in lines
    assert "Size: Large" in lines and 'Note: "no onions"' in lines


# The kitchen and the demo -----------------------------------------------------------------------


def test_crossing_a_dish_off_crosses_off_each_of_its_lines(customer, restaurant, dishes):
    from ordering.services import order_item_mark_done, order_transition
    from ordering.status import Actor, OrderStatus
    from tests.factories import StaffMembershipFactory

    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    order = _order(
        customer=customer,
        items=[(dishes["burger"], 1, (dishes["large"],)), (dishes["burger"], 1, (dishes["regular"],), "rare")],
        paid=True,
    )
    order_transition(order_id=order.pk, to=OrderStatus.ACCEPTED, actor_kind=Actor.STAFF, actor=cook)
    order_item_mark_done(order_id=order.pk, menu_item_id=dishes["burger"].pk, user=cook)
    assert all(line.done_at is not None for line in OrderLine.objects.filter(order=order))
    ticket = _bearer(cook).get(f"/api/v1/kitchen/{restaurant.pk}/orders").json()[0]
    assert sorted((i["options"][0]["name"], i["note"], i["done"]) for i in ticket["items"]) == [
        ("Large", "", True),
        ("Regular", "rare", True),
    ]


def test_the_demo_has_sizes_extras_and_tags_and_loads_twice_the_same():
    import io

    from django.core.management import call_command

    from ordering.models import MenuItem

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    diavola = MenuItem.objects.get(name="Diavola")
    assert [(g.name, g.min_choices, g.options.count()) for g in diavola.option_groups.order_by("position")] == [
        ("Size", 1, 3),
        ("Extras", 0, 3),
    ]
    assert "spicy" in diavola.dietary and "gluten" in diavola.allergens
    # the dish an old client (and the benchmark) orders by id alone has no required group
    assert not MenuItem.objects.get(name="Margherita").option_groups.filter(min_choices__gt=0).exists()
    assert MenuItem.objects.filter(dietary__contains="vegan").count() >= 3


def test_a_cart_line_whose_option_left_the_menu_is_shown_and_cannot_be_checked_out(
    client, customer, restaurant, dishes
):
    client.force_login(customer)
    add_to_cart(client, dishes["burger"], 1, option=[dishes["large"].pk, dishes["cheese"].pk])
    Option.objects.filter(pk=dishes["cheese"].pk).delete()
    cart = client.get(reverse("cart")).content.decode()
    assert "An option is no longer offered" in cart and "Some dishes in your cart are no longer available" in cart
    response = client.post(
        reverse("checkout"), {"delivery_address": "1 Lane", "notes": "", "checkout_token": checkout_token(client)}
    )
    assert response.status_code == 409 and "not options of Burger" in response.content.decode()
    assert not Order.objects.exists()


def test_the_admin_lists_and_opens_option_groups(client, dishes):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x-long-password-1")
    client.force_login(admin)
    group = OptionGroup.objects.get(menu_item=dishes["burger"], name="Extras")
    assert "Extras" in client.get(reverse("admin:ordering_optiongroup_changelist")).content.decode()
    page = client.get(reverse("admin:ordering_optiongroup_change", args=[group.pk])).content.decode()
    assert "Bacon" in page and "Truffle" in page


def test_the_kitchen_crosses_off_one_line_of_a_dish_ordered_twice(customer, restaurant, dishes):
    from ordering.services import order_transition
    from ordering.status import Actor, OrderStatus
    from tests.factories import StaffMembershipFactory

    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    order = _order(
        customer=customer,
        items=[(dishes["burger"], 1, (dishes["large"],)), (dishes["burger"], 1, (dishes["regular"],), "rare")],
        paid=True,
    )
    other = _order(customer=customer, items=[(dishes["fries"], 1)], paid=True)
    order_transition(order_id=order.pk, to=OrderStatus.ACCEPTED, actor_kind=Actor.STAFF, actor=cook)
    client = _bearer(cook)
    rare = OrderLine.objects.get(order=order, note="rare")

    response = client.post(f"/api/v1/kitchen/orders/{order.pk}/lines/{rare.pk}/done", {}, content_type=JSON)

    assert response.status_code == 200
    items = {item["note"]: (item["line_id"], item["done"]) for item in response.json()["items"]}
    assert items["rare"] == (rare.pk, True) and items[""][1] is False
    # a line of another order is not this order's
    other_line = OrderLine.objects.get(order=other)
    missing = client.post(f"/api/v1/kitchen/orders/{order.pk}/lines/{other_line.pk}/done", {}, content_type=JSON)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
