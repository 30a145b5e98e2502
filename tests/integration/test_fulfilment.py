"""Delivery or pick-up, the delivery fee and minimum order, tips and ordering ahead: the rules of
``order_place`` on the real database, the API's fields and errors, the checkout page, the
kitchen ticket, the board, the receipt and the paid email."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.receipts import order_receipt
from ordering import selectors, services
from ordering.exceptions import InvalidOrder, RestaurantBusy
from ordering.models import Order
from ordering.services import OrderRequest
from ordering.status import Actor
from tests.integration.site_helpers import add_to_cart, checkout_token

pytestmark = pytest.mark.django_db


def place(customer, restaurant, *lines, key=None, **fields):
    request = OrderRequest(
        restaurant_id=restaurant.pk,
        items=[(item.pk, quantity) for item, quantity in lines],
        delivery_address=fields.pop("delivery_address", "1 Dock Road"),
        **fields,
    )
    return services.order_place(customer=customer, request=request, idempotency_key=key)[0]


@pytest.fixture
def delivering(restaurant):
    restaurant.delivery_fee, restaurant.minimum_order = Decimal("2.50"), Decimal("15.00")
    restaurant.save()
    return restaurant


def next_quarter(minutes_ahead: int) -> datetime.datetime:
    moment = timezone.now() + datetime.timedelta(minutes=minutes_ahead)
    moment = moment.replace(second=0, microsecond=0)
    return moment + datetime.timedelta(minutes=(15 - moment.minute % 15) % 15)


def test_a_delivery_pays_the_fee_and_the_tip_on_top_of_the_dishes(customer, delivering, menu) -> None:
    order = place(customer, delivering, (menu["pizza"], 2), tip=Decimal("3.00"))  # 2 × 11.50
    assert (order.fulfilment, order.delivery_fee, order.tip) == ("delivery", Decimal("2.50"), Decimal("3.00"))
    assert order.subtotal == Decimal("23.00") and order.total == Decimal("28.50")
    assert order.delivery_address == "1 Dock Road"


def test_pick_up_needs_no_address_no_fee_and_no_minimum(customer, delivering, menu) -> None:
    order = place(customer, delivering, (menu["pasta"], 1), fulfilment="pickup", delivery_address="")
    assert (order.fulfilment, order.delivery_fee, order.total, order.delivery_address) == (
        "pickup",
        Decimal("0.00"),
        Decimal("9.25"),
        "",
    )
    # an address sent with a pick-up is not kept
    again = place(customer, delivering, (menu["pasta"], 1), fulfilment="pickup", delivery_address="2 Quay")
    assert again.delivery_address == ""


def test_below_the_minimum_a_delivery_is_refused_and_nothing_is_written(customer, delivering, menu) -> None:
    with pytest.raises(InvalidOrder) as refused:
        place(customer, delivering, (menu["pasta"], 1))
    assert refused.value.code == "below_minimum_order"
    assert refused.value.details == {"minimum": "15.00", "subtotal": "9.25"}
    assert not Order.objects.exists()


def test_a_way_not_offered_and_a_bad_tip_are_refused(customer, delivering, menu) -> None:
    delivering.offers_pickup = False
    delivering.save()
    with pytest.raises(InvalidOrder) as refused:
        place(customer, delivering, (menu["pizza"], 2), fulfilment="pickup")
    assert refused.value.code == "fulfilment_unavailable" and refused.value.details["offered"] == ["delivery"]
    for tip in (Decimal("-1.00"), Decimal("100.01"), Decimal("1.005")):
        with pytest.raises(InvalidOrder) as refused:
            place(customer, delivering, (menu["pizza"], 2), tip=tip)
        assert refused.value.code == "invalid_tip"
    with pytest.raises(InvalidOrder) as refused:
        place(customer, delivering, (menu["pizza"], 2), delivery_address="  ")
    assert refused.value.code == "missing_address"
    assert not Order.objects.exists()


def test_an_order_ahead_is_taken_while_busy_now_but_not_for_a_closed_time(customer, restaurant, menu) -> None:
    restaurant.busy, restaurant.opening_hours = True, {}
    restaurant.save()
    with pytest.raises(RestaurantBusy):
        place(customer, restaurant, (menu["pizza"], 1))
    when = next_quarter(restaurant.prep_time_minutes + 30)
    order = place(customer, restaurant, (menu["pizza"], 1), scheduled_for=when)
    assert order.scheduled_for == when

    with pytest.raises(InvalidOrder) as refused:
        place(customer, restaurant, (menu["pizza"], 1), scheduled_for=when + datetime.timedelta(minutes=7))
    assert refused.value.code == "invalid_slot"
    with pytest.raises(InvalidOrder) as refused:
        place(customer, restaurant, (menu["pizza"], 1), scheduled_for=next_quarter(0) - datetime.timedelta(hours=1))
    assert refused.value.code == "invalid_slot"

    # closed by the staff: no orders ahead either
    restaurant.busy, restaurant.is_open = False, False
    restaurant.save()
    with pytest.raises(InvalidOrder) as refused:
        place(customer, restaurant, (menu["pizza"], 1), scheduled_for=when)
    assert refused.value.code == "restaurant_closed"


def test_the_fingerprint_tells_fulfilment_tip_and_time_apart_and_keeps_old_keys(customer, restaurant, menu) -> None:
    plain = OrderRequest(restaurant_id=1, items=[(5, 1)], delivery_address="x")
    pickup = OrderRequest(restaurant_id=1, items=[(5, 1)], delivery_address="x", fulfilment="pickup")
    tipped = OrderRequest(restaurant_id=1, items=[(5, 1)], delivery_address="x", tip=Decimal("1.00"))
    assert len({plain.fingerprint(), pickup.fingerprint(), tipped.fingerprint()}) == 3
    # a request without the new fields digests as it did before they existed
    import hashlib
    import json

    before = hashlib.sha256(json.dumps([1, [[5, 1]], "x", ""], separators=(",", ":")).encode()).hexdigest()
    assert plain.fingerprint() == before


def test_slots_of_a_restaurant_and_the_api(customer, restaurant, menu) -> None:
    restaurant.opening_hours = {str(day): [["00:00", "00:00"]] for day in range(7)}
    restaurant.save()
    # The day after tomorrow: tomorrow's first slots are too soon when the test runs within the
    # preparation time of midnight.
    later = timezone.localdate() + datetime.timedelta(days=2)
    found = selectors.order_ahead_slots(restaurant=restaurant, day=later)
    assert len(found) == 96
    answer = Client().get(f"/api/v1/restaurants/{restaurant.pk}/slots", {"date": later.isoformat()}).json()
    assert answer["date"] == later.isoformat() and len(answer["slots"]) == 96
    assert Client().get(f"/api/v1/restaurants/{restaurant.pk}/slots", {"date": "someday"}).status_code == 422
    restaurant.is_open = False
    restaurant.save()
    assert selectors.order_ahead_slots(restaurant=restaurant, day=later) == []


def test_the_api_takes_and_shows_the_new_fields(customer, delivering, menu) -> None:
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    when = next_quarter(delivering.prep_time_minutes + 60)
    body = {
        "restaurant_id": delivering.pk,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "fulfilment": "pickup",
        "tip": "1.50",
        "scheduled_for": when.isoformat(),
    }
    response = client.post("/api/v1/orders", body, content_type="application/json")
    assert response.status_code == 201, response.content
    order = response.json()
    assert (order["fulfilment"], order["subtotal"], order["delivery_fee"], order["tip"], order["total"]) == (
        "pickup",
        "11.50",
        "0.00",
        "1.50",
        "13.00",
    )
    assert datetime.datetime.fromisoformat(order["scheduled_for"]) == when and order["delivery_address"] == ""
    # the VAT table covers the dishes only (no fee; a tip is outside VAT)
    assert order["vat"]["gross"] == "11.50"

    too_little = {**body, "fulfilment": "delivery", "delivery_address": "1 Road", "scheduled_for": None}
    refused = client.post("/api/v1/orders", too_little, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "below_minimum_order"

    listed = Client().get("/api/v1/restaurants").json()[0]
    assert (listed["offers_delivery"], listed["offers_pickup"], listed["delivery_fee"], listed["minimum_order"]) == (
        True,
        True,
        "2.50",
        "15.00",
    )


def test_the_checkout_page_places_a_pickup_with_a_percentage_tip(client, customer, delivering, menu) -> None:
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)  # 23.00
    page = client.get(reverse("checkout")).content.decode()
    assert "Delivery (€2.50)" in page and "Pick-up at the restaurant" in page and "As soon as possible" in page
    response = client.post(
        reverse("checkout"),
        {
            "fulfilment": "pickup",
            "delivery_address": "",
            "when": "asap",
            "tip_choice": "10",
            "checkout_token": checkout_token(client),
        },
    )
    assert response.status_code == 302
    order = Order.objects.get(customer=customer)
    assert (order.fulfilment, order.tip, order.total) == ("pickup", Decimal("2.30"), Decimal("25.30"))


def test_the_checkout_page_asks_for_an_address_for_delivery_only(client, customer, delivering, menu) -> None:
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)
    response = client.post(
        reverse("checkout"),
        {
            "fulfilment": "delivery",
            "delivery_address": "",
            "when": "asap",
            "tip_choice": "custom",
            "tip_amount": "",
            "checkout_token": checkout_token(client),
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter the address we should deliver to." in page and "Enter the tip, or choose another option." in page
    assert not Order.objects.exists()


def test_receipt_kitchen_ticket_and_board_say_which_is_which(client, customer, delivering, menu) -> None:
    when = next_quarter(delivering.prep_time_minutes + 60)
    order = place(customer, delivering, (menu["pizza"], 2), tip=Decimal("2.00"), scheduled_for=when)
    pickup = place(customer, delivering, (menu["pasta"], 1), fulfilment="pickup")
    receipt = order_receipt(user=customer, order_id=order.pk)
    assert receipt.charges == [
        ("Delivery fee", Decimal("7.00"), Decimal("2.50")),
        ("Tip (no VAT)", None, Decimal("2.00")),
    ]
    assert receipt.vat.gross == order.total - order.tip
    for placed in (order, pickup):
        services.order_transition(order_id=placed.pk, to="paid", actor_kind=Actor.SYSTEM)
        services.order_transition(order_id=placed.pk, to="accepted", actor_kind=Actor.STAFF)
    board = selectors.pickup_board(restaurant_id=delivering.pk)
    assert [(n.order_id, n.pickup) for n in board["preparing"]] == [(order.pk, False), (pickup.pk, True)]
    page = client.get(reverse("pickup_board", args=[delivering.slug])).content.decode()
    assert page.count("Courier") == 1


def test_staff_set_delivery_pickup_fee_minimum_and_address(client, restaurant) -> None:
    from typing import cast

    from ordering.models import Restaurant, StaffMembership
    from tests.factories import StaffMembershipFactory

    client.force_login(cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user)
    url = reverse("staff_fulfilment", args=[restaurant.pk])
    response = client.post(
        url,
        {"offers_delivery": "on", "delivery_fee": "3.20", "minimum_order": "18.00", "address": "4 Quay Street"},
        follow=True,
    )
    assert "Delivery and pick-up saved." in response.content.decode()
    saved = Restaurant.objects.get(pk=restaurant.pk)
    assert (saved.offers_delivery, saved.offers_pickup, saved.delivery_fee, saved.minimum_order, saved.address) == (
        True,
        False,
        Decimal("3.20"),
        Decimal("18.00"),
        "4 Quay Street",
    )
    # neither way: a form error, nothing changed
    refused = client.post(url, {"delivery_fee": "1.00", "minimum_order": "0.00"})
    assert refused.status_code == 400 and "Offer delivery, pick-up or both" in refused.content.decode()
    bad_fee = client.post(url, {"offers_pickup": "on", "delivery_fee": "-1", "minimum_order": "0"})
    assert bad_fee.status_code == 400
    assert Restaurant.objects.get(pk=restaurant.pk).delivery_fee == Decimal("3.20")
