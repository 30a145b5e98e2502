"""The API's accounts and authentication: register, token, bearer and session use."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ordering import services
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_register_then_token_then_bearer_call():
    # given a fresh client
    client = Client()

    # when it registers, asks for a token and calls an authenticated endpoint with it
    registered = client.post(
        "/api/v1/auth/register",
        {"username": "newbie", "email": "newbie@example.com", "password": "a-long-secret-phrase"},
        content_type=JSON,
    )
    issued = client.post(
        "/api/v1/auth/token", {"username": "newbie", "password": "a-long-secret-phrase"}, content_type=JSON
    )
    orders = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {issued.json()['token']}"})

    # then each step answers as the contract says
    assert registered.status_code == 201
    assert registered.json() == {"id": get_user_model().objects.get(username="newbie").pk, "username": "newbie"}
    assert issued.status_code == 200
    assert isinstance(issued.json()["token"], str) and len(issued.json()["token"]) >= 32
    assert orders.status_code == 200
    assert orders.json() == []


def test_register_taken_username_is_409_and_weak_password_422():
    # given an existing user
    UserFactory(username="taken")
    client = Client()

    # when someone registers the same name, or a weak password
    taken = client.post(
        "/api/v1/auth/register",
        {"username": "TAKEN", "email": "t@example.com", "password": "a-long-secret-phrase"},
        content_type=JSON,
    )
    weak = client.post(
        "/api/v1/auth/register", {"username": "fresh", "email": "f@example.com", "password": "123"}, content_type=JSON
    )
    bad_email = client.post(
        "/api/v1/auth/register",
        {"username": "fresh", "email": "not-an-email", "password": "a-long-secret-phrase"},
        content_type=JSON,
    )

    # then they are refused with a machine code and the field at fault, and nobody is created
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "username_taken"
    assert taken.json()["error"]["field"] == "username"
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "weak_password"
    assert bad_email.status_code == 422
    assert bad_email.json()["error"]["code"] == "invalid_email"
    assert not get_user_model().objects.filter(username="fresh").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x"},
        {"username": 1, "email": "e@example.com", "password": "a-long-secret-phrase"},
        {"username": "u", "email": "e@example.com", "password": "pass\ud800word"},
    ],
)
def test_register_bad_bodies_are_422(body):
    response = Client().post("/api/v1/auth/register", body, content_type=JSON)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["details"]


def test_token_with_wrong_password_is_401_invalid_credentials(customer):
    # when a client asks for a token with the wrong password, or for an unknown user
    wrong = Client().post("/api/v1/auth/token", {"username": customer.username, "password": "nope"}, content_type=JSON)
    unknown = Client().post("/api/v1/auth/token", {"username": "ghost", "password": PASSWORD}, content_type=JSON)

    # then both are 401 with the same code
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {"error": {"code": "invalid_credentials", "message": "Wrong username or password."}}


def test_token_of_inactive_user_is_refused(customer):
    customer.is_active = False
    customer.save()

    credentials = {"username": customer.username, "password": PASSWORD}
    response = Client().post("/api/v1/auth/token", credentials, content_type=JSON)

    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=["missing", "unknown", "empty", "basic", "huge"],
)
def test_without_a_valid_token_every_protected_endpoint_is_401(headers, customer):
    client = Client(headers=headers)

    answers = [
        client.get("/api/v1/orders"),
        client.get("/api/v1/orders/1"),
        client.post("/api/v1/orders", {"restaurant_id": 1}, content_type=JSON),
        client.post("/api/v1/orders/1/cancel"),
        client.get("/api/v1/kitchen/1/orders"),
        client.post("/api/v1/kitchen/orders/1/transition", {"to": "accepted"}, content_type=JSON),
        client.get("/api/v1/wallet"),
        client.post("/api/v1/wallet/top-up", {"amount": "20.00", "card_number": "4242424242424242"}, content_type=JSON),
    ]

    for response in answers:
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bad_bearer_token_is_401_even_with_a_session(customer):
    # given a logged-in browser that also sends a bogus bearer token
    client = Client(headers={"Authorization": "Bearer bogus"})
    client.force_login(customer)

    response = client.get("/api/v1/orders")

    assert response.status_code == 401


def test_session_auth_works_for_reads_and_requires_csrf_for_writes(customer, menu, restaurant):
    # given a browser session with CSRF enforcement, as the real site has
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "1 Lane",
    }

    # when it reads, then writes without and with the CSRF token
    read = client.get("/api/v1/orders")
    without_token = client.post("/api/v1/orders", body, content_type=JSON)
    client.cookies.load({"csrftoken": "a" * 32})
    with_token = client.post("/api/v1/orders", body, content_type=JSON, headers={"X-CSRFToken": "a" * 32})

    # then reads pass, a write without the token is refused, with it accepted
    assert read.status_code == 200
    assert without_token.status_code == 403
    assert without_token.json()["error"]["code"] == "csrf_failed"
    assert with_token.status_code == 201, with_token.content


def test_bearer_writes_need_no_csrf(customer, menu, restaurant):
    token = services.api_token_issue(user=customer)
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})

    response = client.post(
        "/api/v1/orders",
        {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": menu["pasta"].pk, "quantity": 2}],
            "delivery_address": "1 Lane",
        },
        content_type=JSON,
    )

    assert response.status_code == 201


def test_restaurants_and_menus_are_public_like_the_site(restaurant, menu):
    from django.test import Client

    anonymous = Client()
    assert anonymous.get("/api/v1/restaurants").status_code == 200
    listed = anonymous.get(f"/api/v1/restaurants/{restaurant.pk}/menu").json()
    assert {item["name"] for item in listed} == {"Pizza", "Pasta", "Soup"}
    assert anonymous.get("/api/v1/orders").status_code == 401
