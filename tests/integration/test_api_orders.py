"""Placing, listing, reading and cancelling orders through the API."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ordering import services
from ordering.models import MenuItem, Order, OrderEvent, OrderLine
from ordering.status import Actor, OrderStatus
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db
JSON = "application/json"


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def order_body(restaurant, *lines, **extra):
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": item.pk, "quantity": quantity} for item, quantity in lines],
        "delivery_address": "12 Baker Street",
    }
    body.update(extra)
    return body


def place(client, restaurant, *lines, **headers):
    return client.post("/api/v1/orders", order_body(restaurant, *lines), content_type=JSON, headers=headers)


def snapshot():
    """What a refused request must leave untouched."""
    return (
        Order.objects.count(),
        OrderLine.objects.count(),
        OrderEvent.objects.count(),
        sorted(MenuItem.objects.values_list("pk", "stock_remaining", "stock_date")),
    )


def test_restaurant_list_shape(customer, restaurant):
    RestaurantFactory(name="Zed's", is_open=False)

    response = bearer(customer).get("/api/v1/restaurants")

    assert response.status_code == 200
    listed = {r["name"]: r for r in response.json()}
    assert listed["Casa Test"]["id"] == restaurant.pk
    assert listed["Casa Test"]["is_open"] is True
    assert listed["Zed's"]["is_open"] is False
    assert {"id", "name", "is_open"} <= set(listed["Casa Test"])


def test_menu_shape_with_price_strings_and_availability(customer, restaurant, menu):
    # given a dish switched off and the soup sold out today
    MenuItem.objects.filter(pk=menu["pasta"].pk).update(is_available=False)
    MenuItem.objects.filter(pk=menu["soup"].pk).update(stock_remaining=0, stock_date=timezone.localdate())

    response = bearer(customer).get(f"/api/v1/restaurants/{restaurant.pk}/menu")

    assert response.status_code == 200
    items = {i["name"]: i for i in response.json()}
    assert items["Pizza"]["price"] == "11.50"
    assert items["Pizza"]["available"] is True
    assert items["Pizza"]["id"] == menu["pizza"].pk
    assert items["Pasta"]["available"] is False
    assert items["Soup"] == {**items["Soup"], "price": "4.10", "available": False, "remaining_today": 0}
    assert [i["name"] for i in response.json()] == ["Soup", "Pasta", "Pizza"]  # by category position


def test_menu_of_unknown_restaurant_is_404(customer):
    client = bearer(customer)

    for restaurant_id in ("999999", "99999999999999999999999", "abc"):
        url = f"/api/v1/restaurants/{restaurant_id}/menu"
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_place_order_computes_total_server_side_ignoring_forged_prices(customer, restaurant, menu):
    # given a body carrying forged prices and totals
    body = order_body(restaurant, (menu["pizza"], 2), (menu["soup"], 1), total="0.01", notes="Ring twice")
    body["items"][0].update(price="0.01", unit_price=0)
    body["items"][1]["unit_price"] = "0.00"

    # when the customer posts it
    response = bearer(customer).post("/api/v1/orders", body, content_type=JSON)

    # then the order is priced from the menu
    assert response.status_code == 201, response.content
    order = response.json()
    assert order["total"] == "27.10"
    assert order["status"] == "pending_payment"
    assert order["version"] == 1
    assert order["restaurant_id"] == restaurant.pk
    assert order["notes"] == "Ring twice"
    assert order["items"] == [
        {
            "menu_item_id": menu["pizza"].pk,
            "name": "Pizza",
            "quantity": 2,
            "unit_price": "11.50",
            "line_total": "23.00",
            "vat_rate": "7.00",
            "options": [],
            "note": "",
        },
        {
            "menu_item_id": menu["soup"].pk,
            "name": "Soup",
            "quantity": 1,
            "unit_price": "4.10",
            "line_total": "4.10",
            "vat_rate": "7.00",
            "options": [],
            "note": "",
        },
    ]
    assert [(s["status"], s["version"]) for s in order["timeline"]] == [("pending_payment", 1)]
    assert datetime.datetime.fromisoformat(order["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert datetime.datetime.fromisoformat(order["timeline"][0]["at"].replace("Z", "+00:00")).tzinfo is not None
    stored = Order.objects.get(pk=order["id"])
    assert stored.total == Decimal("27.10") and stored.customer == customer
    assert MenuItem.objects.get(pk=menu["soup"].pk).stock_remaining == 4


def _bad_bodies(restaurant, menu, other_item):
    good = order_body(restaurant, (menu["pizza"], 1))

    def with_items(*items):
        return {**good, "items": list(items)}

    def with_quantity(quantity):
        return with_items({"menu_item_id": menu["soup"].pk, "quantity": quantity})

    def line(item_id, quantity=1):
        return {"menu_item_id": item_id, "quantity": quantity}

    pizza, soup = menu["pizza"].pk, menu["soup"].pk

    without_address = dict(good)
    del without_address["delivery_address"]
    return {
        # name: (raw body or dict, status, code)
        "malformed json": ('{"restaurant_id": 1, "items": [', 400, "malformed_json"),
        "not json at all": ("restaurant_id=1", 400, "malformed_json"),
        "json array": ("[1, 2, 3]", 422, "invalid_request"),
        "json string": ('"hello"', 422, "invalid_request"),
        "json null": ("null", 422, "invalid_request"),
        "NaN": ('{"restaurant_id": NaN}', 400, "malformed_json"),
        "deeply nested": ("[" * 100000 + "]" * 100000, 400, "malformed_json"),
        "bad utf-8": (b'{"restaurant_id": "\xff"}', 400, "malformed_json"),
        "empty object": ({}, 422, "invalid_request"),
        "unknown restaurant": ({**good, "restaurant_id": 987654321}, 422, "unknown_restaurant"),
        "huge restaurant id": ({**good, "restaurant_id": 10**30}, 422, "invalid_request"),
        "string restaurant id": ({**good, "restaurant_id": str(restaurant.pk)}, 422, "invalid_request"),
        "unknown menu item": (with_items(line(987654321)), 422, "unknown_menu_item"),
        "item of another restaurant": (with_items(line(other_item.pk)), 422, "unknown_menu_item"),
        "string menu item id": (with_items(line(str(soup))), 422, "invalid_request"),
        "zero quantity": (with_quantity(0), 422, "invalid_request"),
        "negative quantity": (with_quantity(-1), 422, "invalid_request"),
        "fractional quantity": (with_quantity(1.5), 422, "invalid_request"),
        "float whole quantity": (with_quantity(2.0), 422, "invalid_request"),
        "string quantity": (with_quantity("2"), 422, "invalid_request"),
        "bool quantity": (with_quantity(True), 422, "invalid_request"),
        "null quantity": (with_quantity(None), 422, "invalid_request"),
        "huge quantity": (with_quantity(10**30), 422, "invalid_request"),
        "over the per-line limit": (with_quantity(51), 422, "invalid_request"),
        "over the limit by repeating a line": (
            with_items(line(pizza, 50), line(pizza, 1)),
            422,
            "invalid_quantity",
        ),
        "more than the stock": (with_quantity(6), 422, "out_of_stock"),
        "missing quantity": (with_items({"menu_item_id": soup}), 422, "invalid_request"),
        "empty items": (with_items(), 422, "invalid_request"),
        "items not a list": ({**good, "items": line(soup)}, 422, "invalid_request"),
        "item not an object": (with_items(5), 422, "invalid_request"),
        "too many lines": (with_items(*[line(pizza)] * 31), 422, "invalid_request"),
        "missing address": (without_address, 422, "missing_address"),
        "empty address": ({**good, "delivery_address": ""}, 422, "missing_address"),
        "unknown fulfilment": ({**good, "fulfilment": "drone"}, 422, "invalid_request"),
        "tip not a money string": ({**good, "tip": 2.5}, 422, "invalid_request"),
        "negative tip": ({**good, "tip": "-1.00"}, 422, "invalid_tip"),
        "tip over the most": ({**good, "tip": "100.01"}, 422, "invalid_tip"),
        "scheduled_for not a time": ({**good, "scheduled_for": "soon"}, 422, "invalid_request"),
        "scheduled_for in the past": ({**good, "scheduled_for": "2020-01-01T12:00:00Z"}, 422, "invalid_slot"),
        "scheduled_for off the quarter hour": ({**good, "scheduled_for": "2099-01-01T12:07:00Z"}, 422, "invalid_slot"),
        "blank address": ({**good, "delivery_address": "   "}, 422, "missing_address"),
        "address not a string": ({**good, "delivery_address": ["x"]}, 422, "invalid_request"),
        "address too long": ({**good, "delivery_address": "x" * 256}, 422, "invalid_request"),
        "address with a lone surrogate": ({**good, "delivery_address": "x\ud800"}, 422, "invalid_request"),
        "address with NUL": ({**good, "delivery_address": "x\x00y"}, 422, "invalid_request"),
        "notes too long": ({**good, "notes": "n" * 501}, 422, "invalid_request"),
        "notes a number": ({**good, "notes": 5}, 422, "invalid_request"),
    }


def test_every_bad_order_body_is_a_clean_4xx_and_writes_nothing(customer, restaurant, menu):
    # given a dish of another restaurant and the state before
    other_item = MenuItemFactory()
    client = bearer(customer)
    before = snapshot()

    for name, (body, status, code) in _bad_bodies(restaurant, menu, other_item).items():
        # when the bad body is posted
        if isinstance(body, (str, bytes)):
            response = client.generic("POST", "/api/v1/orders", body, content_type=JSON)
        else:
            response = client.post("/api/v1/orders", body, content_type=JSON)

        # then it is refused with the right status and error shape
        assert response.status_code == status, (name, response.content)
        error = response.json()["error"]
        assert error["code"] == code, (name, error)
        assert isinstance(error["message"], str) and error["message"], name
        if code == "invalid_request":
            assert error["details"], name

    # and nothing was written
    assert snapshot() == before


def test_wrong_content_type_is_415_and_writes_nothing(customer, restaurant, menu):
    client = bearer(customer)
    before = snapshot()
    body = order_body(restaurant, (menu["pizza"], 1))

    form = client.post("/api/v1/orders", body)  # multipart form
    text = client.generic("POST", "/api/v1/orders", json.dumps(body), content_type="text/plain")

    for response in (form, text):
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "unsupported_media_type"
    assert snapshot() == before


def test_missing_body_is_422(customer):
    response = bearer(customer).post("/api/v1/orders", content_type=JSON)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_closed_restaurant_and_unavailable_item_are_refused(customer, restaurant, menu):
    client = bearer(customer)
    MenuItem.objects.filter(pk=menu["pasta"].pk).update(is_available=False)
    before = snapshot()

    unavailable = place(client, restaurant, (menu["pasta"], 1))
    restaurant.is_open = False
    restaurant.save()
    closed = place(client, restaurant, (menu["pizza"], 1))

    assert unavailable.status_code == 422
    assert unavailable.json()["error"]["code"] == "item_unavailable"
    assert closed.status_code == 422
    assert closed.json()["error"]["code"] == "restaurant_closed"
    assert snapshot() == before


def test_missing_auth_on_order_writes_nothing(restaurant, menu):
    before = snapshot()

    response = Client().post("/api/v1/orders", order_body(restaurant, (menu["soup"], 1)), content_type=JSON)

    assert response.status_code == 401
    assert snapshot() == before


def test_same_idempotency_key_same_body_returns_the_first_order(customer, restaurant, menu):
    client = bearer(customer)

    first = place(client, restaurant, (menu["soup"], 2), **{"Idempotency-Key": "key-1"})
    again = place(client, restaurant, (menu["soup"], 2), **{"Idempotency-Key": "key-1"})

    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Order.objects.filter(customer=customer).count() == 1
    assert MenuItem.objects.get(pk=menu["soup"].pk).stock_remaining == 3


def test_same_idempotency_key_other_body_is_409(customer, restaurant, menu):
    client = bearer(customer)
    place(client, restaurant, (menu["soup"], 1), **{"Idempotency-Key": "key-2"})
    before = snapshot()

    conflict = place(client, restaurant, (menu["soup"], 2), **{"Idempotency-Key": "key-2"})

    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert snapshot() == before


def test_idempotency_keys_belong_to_each_customer(customer, other_customer, restaurant, menu):
    mine = place(bearer(customer), restaurant, (menu["pizza"], 1), **{"Idempotency-Key": "shared"})
    theirs = place(bearer(other_customer), restaurant, (menu["pizza"], 1), **{"Idempotency-Key": "shared"})

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_too_long_idempotency_key_is_422(customer, restaurant, menu):
    response = place(bearer(customer), restaurant, (menu["pizza"], 1), **{"Idempotency-Key": "k" * 256})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Order.objects.exists()


def test_order_list_is_own_newest_first(customer, other_customer, restaurant, menu):
    client = bearer(customer)
    first = place(client, restaurant, (menu["pizza"], 1)).json()
    second = place(client, restaurant, (menu["pasta"], 1)).json()
    place(bearer(other_customer), restaurant, (menu["pizza"], 1))

    response = client.get("/api/v1/orders")

    assert response.status_code == 200
    assert [o["id"] for o in response.json()] == [second["id"], first["id"]]
    assert response.json()[1] == first


def test_order_list_has_no_n_plus_one(customer, restaurant, menu, django_assert_max_num_queries):
    client = bearer(customer)
    for _ in range(6):
        place(client, restaurant, (menu["pizza"], 1), (menu["pasta"], 2))

    # token lookup, orders, lines, events (+ slack for session/savepoints)
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/orders")

    assert len(response.json()) == 6


def test_placing_an_order_reads_by_unique_keys_without_ordering_anything(customer, restaurant, menu):
    # given: a customer's client (the token is looked up on every request)
    client = bearer(customer)

    # when: an order is placed with an idempotency key
    with CaptureQueriesContext(connection) as queries:
        response = place(client, restaurant, (menu["pizza"], 1), (menu["pasta"], 2), **{"Idempotency-Key": "k-1"})

    # then: the lookups (token, key, restaurant, dishes) sort nothing: an ORDER BY that .first()
    # adds costs more to compile than the rest of such a query, and they match one row each
    assert response.status_code == 201
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "ORDER BY" in sql], statements
    assert len(statements) <= 12


def test_placing_an_order_of_dishes_without_options_reads_no_options(customer, restaurant, menu):
    client = bearer(customer)

    with CaptureQueriesContext(connection) as queries:
        response = place(client, restaurant, (menu["pizza"], 1), (menu["pasta"], 2))

    # the dishes' query says whether each has options: none has, so none are read
    assert response.status_code == 201
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if sql.startswith("SELECT `ordering_optiongroup`")], statements


def test_get_order_and_another_customers_order_is_404(customer, other_customer, restaurant, menu):
    mine = place(bearer(customer), restaurant, (menu["pizza"], 1)).json()
    theirs = bearer(other_customer)

    own = bearer(customer).get(f"/api/v1/orders/{mine['id']}")
    other_get = theirs.get(f"/api/v1/orders/{mine['id']}")
    other_cancel = theirs.post(f"/api/v1/orders/{mine['id']}/cancel")
    missing = theirs.get("/api/v1/orders/987654321")
    huge = theirs.get("/api/v1/orders/99999999999999999999999999")

    assert own.status_code == 200 and own.json() == mine
    for response in (other_get, other_cancel, missing, huge):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"
    assert Order.objects.get(pk=mine["id"]).status == "pending_payment"


def test_cancel_pending_order(customer, restaurant, menu):
    client = bearer(customer)
    order = place(client, restaurant, (menu["soup"], 2)).json()

    response = client.post(f"/api/v1/orders/{order['id']}/cancel")

    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["version"] == 2
    assert [(s["status"], s["version"]) for s in cancelled["timeline"]] == [("pending_payment", 1), ("cancelled", 2)]
    assert MenuItem.objects.get(pk=menu["soup"].pk).stock_remaining == 5


def test_cancel_twice_is_409(customer, restaurant, menu):
    client = bearer(customer)
    order = place(client, restaurant, (menu["pizza"], 1)).json()
    client.post(f"/api/v1/orders/{order['id']}/cancel")

    again = client.post(f"/api/v1/orders/{order['id']}/cancel")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"
    assert Order.objects.get(pk=order["id"]).version == 2


def test_cancel_once_accepted_is_409(customer, restaurant, menu):
    client = bearer(customer)
    order = place(client, restaurant, (menu["pizza"], 1)).json()
    services.order_transition(order_id=order["id"], to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
    services.order_transition(order_id=order["id"], to=OrderStatus.ACCEPTED, actor_kind=Actor.STAFF)

    response = client.post(f"/api/v1/orders/{order['id']}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert Order.objects.get(pk=order["id"]).status == "accepted"


def test_the_http_request_id_travels_into_the_orders_messages(customer, menu, restaurant):
    from django.test import Client

    from bus.models import OutboxMessage
    from ordering.services import api_token_issue

    token = api_token_issue(user=customer)
    response = Client().post(
        "/api/v1/orders",
        data={
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
            "delivery_address": "1 Test Lane",
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "client-request-0042"},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "client-request-0042"
    row = OutboxMessage.objects.get(type="order.placed")
    assert row.correlation_id == "client-request-0042"


@pytest.mark.parametrize("price,quantity", [(Decimal("0.00"), 2), (Decimal("250.00"), 41)])
def test_a_total_that_can_never_be_paid_is_422_total_out_of_range(customer, restaurant, price, quantity):
    # given a free dish, or one whose quantity makes a total over the wallet's 10,000.00
    dish = MenuItemFactory(category__restaurant=restaurant, price=price)
    before = snapshot()

    response = place(bearer(customer), restaurant, (dish, quantity), **{"Idempotency-Key": "too-much"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "total_out_of_range"
    assert "10,000.00" in error["message"]
    assert snapshot() == before
