"""The kitchen's API: open tickets and status changes by the restaurant's staff."""

from __future__ import annotations

import pytest
from django.test import Client

from ordering import services
from ordering.models import Order
from tests.factories import OrderFactory, RestaurantFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
JSON = "application/json"


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def transition(client: Client, order_id: int, body: dict):
    return client.post(f"/api/v1/kitchen/orders/{order_id}/transition", body, content_type=JSON)


@pytest.fixture
def cook(restaurant):
    return StaffMembershipFactory(restaurant=restaurant).user


def test_staff_sees_open_tickets_oldest_first(cook, customer, restaurant, menu):
    # given a pending order (not a ticket yet), two paid ones and a cancelled one
    services.order_place(
        customer=customer,
        request=services.OrderRequest(restaurant_id=restaurant.pk, items=[(menu["pasta"].pk, 1)], delivery_address="x"),
    )
    first = OrderFactory(customer=customer, dish=menu["pizza"], quantity=2, paid=True)
    second = OrderFactory(customer=customer, dish=menu["soup"], paid=True)
    gone = OrderFactory(customer=customer, dish=menu["pasta"], paid=True)
    services.order_cancel(order_id=gone.pk, customer=customer)

    response = bearer(cook).get(f"/api/v1/kitchen/{restaurant.pk}/orders")

    assert response.status_code == 200
    tickets = response.json()
    assert [t["id"] for t in tickets] == [first.pk, second.pk]
    assert tickets[0]["status"] == "paid"
    assert tickets[0]["version"] == 2
    assert tickets[0]["total"] == "23.00"
    assert tickets[0]["items"][0]["quantity"] == 2
    assert [(s["status"], s["version"]) for s in tickets[0]["timeline"]] == [("pending_payment", 1), ("paid", 2)]


def test_non_staff_and_other_restaurants_staff_are_403(customer, restaurant, menu):
    other_cook = StaffMembershipFactory(restaurant=RestaurantFactory()).user

    for user in (customer, other_cook):
        response = bearer(user).get(f"/api/v1/kitchen/{restaurant.pk}/orders")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_unknown_restaurant_kitchen_is_404(cook):
    response = bearer(cook).get("/api/v1/kitchen/987654321/orders")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_staff_moves_a_paid_order_to_accepted(cook, customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)

    response = transition(bearer(cook), order.pk, {"to": "accepted"})

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["version"] == 3
    assert [s["status"] for s in response.json()["timeline"]] == ["pending_payment", "paid", "accepted"]
    assert Order.objects.get(pk=order.pk).status == "accepted"


def test_invalid_transition_is_409_and_changes_nothing(cook, customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)
    client = bearer(cook)

    skip = transition(client, order.pk, {"to": "ready"})
    customers_move = transition(client, order.pk, {"to": "cancelled"})

    for response in (skip, customers_move):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_transition"
    assert Order.objects.get(pk=order.pk).version == 2


@pytest.mark.parametrize("body", [{"to": "teleported"}, {"to": 3}, {}, {"to": None}])
def test_unknown_status_is_422(cook, customer, restaurant, menu, body):
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)

    response = transition(bearer(cook), order.pk, body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert Order.objects.get(pk=order.pk).version == 2


def test_transition_by_customer_or_other_staff_is_403(customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)
    other_cook = StaffMembershipFactory(restaurant=RestaurantFactory()).user

    for user in (customer, other_cook, UserFactory()):
        response = transition(bearer(user), order.pk, {"to": "accepted"})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_transition_of_unknown_order_is_404(cook):
    response = transition(bearer(cook), 987654321, {"to": "accepted"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_reject_with_a_reason_shows_in_the_timeline(cook, customer, restaurant, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)

    response = transition(bearer(cook), order.pk, {"to": "rejected", "reason": "Oven broken"})

    assert response.status_code == 200
    last_step = response.json()["timeline"][-1]
    assert (last_step["status"], last_step["reason"]) == ("rejected", "Oven broken")


def test_kitchen_list_has_no_n_plus_one(cook, customer, restaurant, menu, django_assert_max_num_queries):
    for _ in range(5):
        OrderFactory(customer=customer, dish=menu["pizza"], paid=True)
    client = bearer(cook)

    # token, restaurant, staff check, orders, lines, events
    with django_assert_max_num_queries(7):
        response = client.get(f"/api/v1/kitchen/{restaurant.pk}/orders")

    assert len(response.json()) == 5
